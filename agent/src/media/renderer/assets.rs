//! The procedural textures and star catalogue. They are deterministic and
//! immutable, so they are generated once per process and shared by every
//! `Renderer` (a new stream, or a test, then starts instantly).

use super::earth;
use super::moon;
use super::stars::StarField;
use super::texture::Texture;
use std::sync::{Arc, OnceLock};

pub struct Assets {
    /// Packed planet layers, see `earth::channel`.
    pub earth: Texture<u64>,
    pub moon: Texture<u8>,
    pub stars: StarField,
}

impl Assets {
    /// Shared instance, built on first use (~0.45 s release, ~2.5 s debug, on 2 cores).
    pub fn shared() -> Arc<Self> {
        static ASSETS: OnceLock<Arc<Assets>> = OnceLock::new();
        ASSETS
            .get_or_init(|| {
                Arc::new(Self {
                    earth: earth::generate(),
                    moon: moon::generate(),
                    stars: StarField::generate(),
                })
            })
            .clone()
    }
}
