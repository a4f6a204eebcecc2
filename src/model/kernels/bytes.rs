//! The bytes of a packed weight: made in memory at load, or used in place from a mapped file
//! that an earlier start wrote (and this start checks), so that a warm start copies nothing.

use std::ops::Deref;
use std::sync::Arc;

use memmap2::Mmap;

pub enum WeightBytes {
    Owned(Vec<u8>),
    Mapped {
        map: Arc<Mmap>,
        start: usize,
        len: usize,
    },
}

impl WeightBytes {
    pub fn zeroed(len: usize) -> Self {
        WeightBytes::Owned(vec![0u8; len])
    }

    /// `len` bytes of `map` from `start`, or `None` when they are not all inside it.
    pub fn mapped(map: Arc<Mmap>, start: usize, len: usize) -> Option<Self> {
        (start.checked_add(len)? <= map.len()).then_some(WeightBytes::Mapped { map, start, len })
    }

    pub fn is_mapped(&self) -> bool {
        matches!(self, WeightBytes::Mapped { .. })
    }

    /// The bytes to fill while the weight is being made.
    ///
    /// # Panics
    /// On mapped bytes: those come finished from their file and are never written.
    pub fn owned_mut(&mut self) -> &mut [u8] {
        match self {
            WeightBytes::Owned(v) => v,
            WeightBytes::Mapped { .. } => panic!("mapped weights are read-only"),
        }
    }
}

impl Deref for WeightBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            WeightBytes::Owned(v) => v,
            WeightBytes::Mapped { map, start, len } => &map[*start..*start + *len],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapped_ranges_stay_inside_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w");
        std::fs::write(&path, b"0123456789").unwrap();
        // SAFETY: a file of this test's own, not changed while mapped.
        let map = Arc::new(unsafe { Mmap::map(&std::fs::File::open(&path).unwrap()) }.unwrap());
        let w = WeightBytes::mapped(map.clone(), 2, 5).unwrap();
        assert_eq!(&*w, b"23456");
        assert!(w.is_mapped());
        assert!(WeightBytes::mapped(map.clone(), 6, 5).is_none());
        assert!(WeightBytes::mapped(map, usize::MAX, 2).is_none());
        assert_eq!(&*WeightBytes::zeroed(3), &[0, 0, 0]);
    }
}
