//! I420 picture buffer: the format the H.264 encoder consumes, so the renderer
//! writes it directly and no colour-conversion pass is needed downstream.

/// A picture in I420 (YUV 4:2:0 planar, BT.601 limited range): Y plane
/// width*height, then U and V planes of ((width+1)/2)*((height+1)/2) each,
/// tightly packed (stride == plane width).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct I420Frame {
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
}

/// Limited-range black.
const BLACK_Y: u8 = 16;
const NEUTRAL_CHROMA: u8 = 128;

impl I420Frame {
    /// A black frame.
    pub fn new(width: u32, height: u32) -> Self {
        let mut frame = Self {
            width: 0,
            height: 0,
            data: Vec::new(),
        };
        frame.resize(width, height);
        frame
    }

    /// Changes the size and clears to black, reusing the allocation.
    pub fn resize(&mut self, width: u32, height: u32) {
        self.width = width;
        self.height = height;
        let luma = self.luma_len();
        self.data.clear();
        self.data.resize(luma, BLACK_Y);
        self.data
            .resize(luma + 2 * self.chroma_len(), NEUTRAL_CHROMA);
    }

    pub fn chroma_width(&self) -> u32 {
        self.width.div_ceil(2)
    }

    pub fn chroma_height(&self) -> u32 {
        self.height.div_ceil(2)
    }

    fn luma_len(&self) -> usize {
        self.width as usize * self.height as usize
    }

    fn chroma_len(&self) -> usize {
        self.chroma_width() as usize * self.chroma_height() as usize
    }

    /// Plane boundaries clamped to the buffer, so a caller that shrank `data`
    /// by hand gets short planes instead of a panic.
    fn bounds(&self) -> (usize, usize, usize) {
        let len = self.data.len();
        let y_end = self.luma_len().min(len);
        let u_end = (y_end + self.chroma_len()).min(len);
        let v_end = (u_end + self.chroma_len()).min(len);
        (y_end, u_end, v_end)
    }

    pub fn y(&self) -> &[u8] {
        let (y_end, _, _) = self.bounds();
        &self.data[..y_end]
    }

    pub fn u(&self) -> &[u8] {
        let (y_end, u_end, _) = self.bounds();
        &self.data[y_end..u_end]
    }

    pub fn v(&self) -> &[u8] {
        let (_, u_end, v_end) = self.bounds();
        &self.data[u_end..v_end]
    }

    pub fn planes_mut(&mut self) -> (&mut [u8], &mut [u8], &mut [u8]) {
        let (y_end, u_end, v_end) = self.bounds();
        let (y, rest) = self.data[..v_end].split_at_mut(y_end);
        let (u, v) = rest.split_at_mut(u_end - y_end);
        (y, u, v)
    }

    /// True when `data` has exactly the size the dimensions call for.
    pub fn is_consistent(&self) -> bool {
        self.data.len() == self.luma_len() + 2 * self.chroma_len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plane_sizes_for_odd_dimensions() {
        let mut f = I420Frame::new(641, 479);
        assert_eq!((f.chroma_width(), f.chroma_height()), (321, 240));
        assert_eq!(f.y().len(), 641 * 479);
        assert_eq!(f.u().len(), 321 * 240);
        assert_eq!(f.v().len(), 321 * 240);
        assert!(f.y().iter().all(|&p| p == 16) && f.u().iter().all(|&p| p == 128));
        let cap = f.data.capacity();
        f.resize(320, 240);
        assert_eq!(f.data.len(), 320 * 240 * 3 / 2);
        assert_eq!(f.data.capacity(), cap);
        let (y, u, v) = f.planes_mut();
        assert_eq!((y.len(), u.len(), v.len()), (76_800, 19_200, 19_200));
    }
}
