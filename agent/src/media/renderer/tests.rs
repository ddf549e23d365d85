//! Behavioural tests of the whole renderer (the picture is not blank, it
//! animates, reacts to the camera, survives any size or input).

use super::*;

fn render(r: &mut Renderer, t: f64) -> I420Frame {
    let mut f = I420Frame::new(1, 1);
    r.render(t, &mut f);
    f
}

fn mean_and_variance(p: &[u8]) -> (f64, f64) {
    let n = p.len().max(1) as f64;
    let mean = p.iter().map(|&v| v as f64).sum::<f64>() / n;
    let var = p.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
    (mean, var)
}

/// Mean absolute luma difference over the central half of the frame.
fn centre_difference(a: &I420Frame, b: &I420Frame) -> f64 {
    let (w, h) = (a.width as usize, a.height as usize);
    let mut sum = 0u64;
    let mut n = 0u64;
    for y in h / 4..3 * h / 4 {
        for x in w / 4..3 * w / 4 {
            sum += (a.y()[y * w + x] as i32 - b.y()[y * w + x] as i32).unsigned_abs() as u64;
            n += 1;
        }
    }
    sum as f64 / n.max(1) as f64
}

/// Pixels brighter than the night sky can be (a proxy for planet coverage).
fn bright_pixels(f: &I420Frame) -> usize {
    f.y().iter().filter(|&&p| p > 40).count()
}

#[test]
fn default_frame_is_not_blank() {
    let mut r = Renderer::new(640, 360);
    let f = render(&mut r, 0.0);
    assert_eq!((f.width, f.height), (640, 360));
    let (mean, var) = mean_and_variance(f.y());
    assert!(mean > 24.0, "mean luma {mean}");
    assert!(var > 200.0, "luma variance {var}");
    // Chroma is not flat grey: the planet is blue/green.
    let (_, uvar) = mean_and_variance(f.u());
    assert!(uvar > 1.0, "chroma variance {uvar}");
}

#[test]
fn planet_fills_about_half_the_height() {
    let mut r = Renderer::new(320, 180);
    let f = render(&mut r, 0.0);
    // Rows with a run of clearly lit pixels in the central columns belong to
    // the planet (stars are isolated dots; moon and milky-way core lie aside).
    let (w, h) = (f.width as usize, f.height as usize);
    let columns = w / 2 - h / 5..w / 2 + h / 5;
    let lit_rows: Vec<usize> = (0..h)
        .filter(|&y| {
            f.y()[y * w..][columns.clone()]
                .iter()
                .filter(|&&p| p > 50)
                .count()
                >= 8
        })
        .collect();
    let span = lit_rows.last().unwrap_or(&0) - lit_rows.first().unwrap_or(&0) + 1;
    let frac = span as f64 / f.height as f64;
    assert!(
        (0.38..=0.65).contains(&frac),
        "planet spans {frac} of the height"
    );
}

#[test]
fn animates_with_time() {
    let mut r = Renderer::new(320, 180);
    let a = render(&mut r, 0.0);
    let b = render(&mut r, 5.0);
    assert!(centre_difference(&a, &b) > 0.5);
    // Same time, same picture (deterministic).
    assert_eq!(render(&mut r, 5.0), b);
}

#[test]
fn camera_changes_the_picture() {
    let mut r = Renderer::new(320, 180);
    let a = render(&mut r, 1.0);
    r.camera_mut().orbit(1.2, 0.3);
    let b = render(&mut r, 1.0);
    assert!(
        centre_difference(&a, &b) > 3.0,
        "orbit diff {}",
        centre_difference(&a, &b)
    );

    r.camera_mut().reset();
    let before = bright_pixels(&render(&mut r, 1.0));
    r.camera_mut().zoom(0.5);
    let after = bright_pixels(&render(&mut r, 1.0));
    assert!(
        after as f64 > before as f64 * 1.8,
        "zoom {before} -> {after}"
    );

    r.camera_mut().reset();
    r.camera_mut().roll(0.8);
    r.camera_mut().pan(0.5, -0.3);
    assert!(centre_difference(&a, &render(&mut r, 1.0)) > 2.0);
}

#[test]
fn velocities_move_the_camera() {
    let mut c = Camera::default();
    let start = c.clone();
    c.set_velocity(CameraVelocity {
        orbit_x: 0.5,
        zoom: 1.0,
        ..Default::default()
    });
    c.step(10.0); // clamped to 0.1 s
    assert!(c.distance() < start.distance() && c.distance() > start.distance() * 0.85);
    c.reset();
    assert_eq!(c, start);
}

#[test]
fn resize_and_odd_sizes() {
    let mut r = Renderer::new(320, 180);
    let mut f = I420Frame::new(320, 180);
    for &(w, h) in &[(641, 479), (16, 16), (17, 33), (1, 1), (193, 25), (0, 0)] {
        r.resize(w, h);
        r.render(2.0, &mut f);
        let (ew, eh) = (w.max(1), h.max(1));
        assert_eq!(r.size(), (ew, eh));
        assert_eq!((f.width, f.height), (ew, eh));
        assert!(f.is_consistent());
    }
}

#[test]
fn extreme_camera_inputs_never_panic() {
    let mut r = Renderer::new(96, 64);
    let reference = r.camera().clone();
    let c = r.camera_mut();
    c.orbit(f32::NAN, 1.0);
    c.zoom(f32::NAN);
    c.zoom(-3.0);
    c.pan(f32::INFINITY, 0.0);
    c.roll(f32::NAN);
    c.step(f32::NAN);
    assert_eq!(*c, reference, "non-finite input must be ignored");
    let cases: &[&dyn Fn(&mut Camera)] = &[
        &|c| c.zoom(1e30),
        &|c| c.zoom(1e-30),
        &|c| c.zoom(f32::MIN_POSITIVE),
        &|c| c.orbit(1e9, -1e9),
        &|c| c.pan(1e20, -1e20),
        &|c| c.roll(1e30),
        &|c| {
            c.set_velocity(CameraVelocity {
                orbit_x: f32::NAN,
                orbit_y: 1e30,
                zoom: f32::INFINITY,
                pan_x: -1e30,
                pan_y: f32::NAN,
                roll: 1e9,
            });
            for _ in 0..50 {
                c.step(1.0);
            }
        },
    ];
    for (i, case) in cases.iter().enumerate() {
        case(r.camera_mut());
        let p = r.camera().position();
        assert!(
            p.is_finite() && p.length() > 1.0,
            "case {i}: camera at {p:?}"
        );
        for t in [0.0, -1e12, 1e15, f64::NAN, f64::INFINITY] {
            let f = render(&mut r, t);
            assert!(f.is_consistent());
        }
    }
}

#[test]
fn thread_count_does_not_change_output() {
    let mut r = Renderer::new(200, 120);
    r.set_threads(1);
    let one = render(&mut r, 3.0);
    r.set_threads(3);
    assert_eq!(render(&mut r, 3.0), one);
}

#[test]
fn planet_filling_the_screen_is_smooth() {
    // Fully zoomed in, the interior is shaded sparsely and interpolated; the
    // result must still be a lit, continuous surface without stripes.
    let mut r = Renderer::new(640, 360);
    r.camera_mut().zoom(1e-6);
    let f = render(&mut r, 0.0);
    let (mean, var) = mean_and_variance(f.y());
    assert!(mean > 40.0 && var > 20.0, "mean {mean} var {var}");
    let w = f.width as usize;
    let rows = f.y().chunks(w);
    let steps: u64 = rows
        .map(|row| {
            row.windows(2)
                .map(|p| p[0].abs_diff(p[1]) as u64)
                .sum::<u64>()
        })
        .sum();
    let mean_step = steps as f64 / f.y().len() as f64;
    assert!(mean_step < 3.0, "mean horizontal step {mean_step}");
}
