//! Keys and values kept from a pass, and room to extend them in place.
//!
//! A word typed into the explorer scores a few tokens against the cache of everything before
//! them. Concatenating each layer's kept keys and values with the new ones copied the whole
//! cache on every word (95 MB for a 7B at 364 tokens), and in the smallest mode that copy cost
//! a tenth of the word. So a cache kept on the CPU lives in storage with spare positions after
//! its own ([`Room`]), and the pass that extends it writes its tokens there. Caches are shared
//! (the explorer keeps many prefixes and their extensions), so the spare positions go to one
//! extension at a time: whoever claims them while no live cache reaches past this one's end
//! ([`Claim`]); every other extension copies, as before.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use candle_core::{Result, Tensor};

/// Keys and values of one token prefix for every layer, each `[1, kv_heads, len, head_dim]`
/// after rotary embedding, as attention consumes them (a view into larger storage when the
/// cache has room to grow).
#[derive(Debug, Clone)]
pub struct KvCache {
    pub(super) layers: Vec<(Tensor, Tensor)>,
    pub(super) len: usize,
    room: Option<Room>,
}

/// Storage of `cap` positions that a cache's layers view the start of.
#[derive(Debug, Clone)]
struct Room {
    /// Each layer's `[1, kv_heads, cap, head_dim]` keys and values.
    full: Arc<Vec<(Tensor, Tensor)>>,
    cap: usize,
    /// The longest cache over `full` alive: only a cache this long may be extended in place.
    used: Arc<AtomicUsize>,
    /// This cache's hold on its positions past its parent's (none for the storage's first).
    claim: Option<Arc<Claim>>,
}

impl Room {
    /// New storage, its first `len` positions held by the cache made with it.
    fn new(full: Vec<(Tensor, Tensor)>, cap: usize, len: usize) -> Room {
        Room {
            full: Arc::new(full),
            cap,
            used: Arc::new(AtomicUsize::new(len)),
            claim: None,
        }
    }
}

/// Positions `from..to` of a storage held by one extension; given back when the last cache
/// that holds them goes. Holds its parent's claim, so claims are given back newest first.
#[derive(Debug)]
struct Claim {
    used: Arc<AtomicUsize>,
    from: usize,
    to: usize,
    _parent: Option<Arc<Claim>>,
}

impl Drop for Claim {
    fn drop(&mut self) {
        // Always `to` here: a later claim on this storage holds this one.
        let _ = self
            .used
            .compare_exchange(self.to, self.from, Ordering::AcqRel, Ordering::Acquire);
    }
}

/// Spare positions a new storage gets after `len`: room for several words before the next
/// copy, without doubling a long input's memory.
pub(super) fn room_for(len: usize) -> usize {
    (len / 8).clamp(32, 256)
}

impl KvCache {
    /// A cache of `len` positions over `layers`, with no room to grow.
    pub(super) fn new(layers: Vec<(Tensor, Tensor)>, len: usize) -> KvCache {
        KvCache {
            layers,
            len,
            room: None,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The first `len` positions of this cache (no copy). The storage stays held as long as
    /// the truncation lives, so it does not give this cache's room to another.
    pub fn truncate(&self, len: usize) -> Result<KvCache> {
        let len = len.min(self.len);
        let layers = self
            .layers
            .iter()
            .map(|(k, v)| Ok((k.narrow(2, 0, len)?, v.narrow(2, 0, len)?)))
            .collect::<Result<Vec<_>>>()?;
        Ok(KvCache {
            layers,
            len,
            room: self.room.clone(),
        })
    }

    /// Bytes held by the cache, its room included.
    pub fn bytes(&self) -> usize {
        let positions = self.room.as_ref().map_or(self.len, |r| r.cap);
        self.layers
            .iter()
            .map(|(k, v)| {
                let per_position = |t: &Tensor| t.elem_count() / self.len.max(1);
                (per_position(k) + per_position(v)) * positions * k.dtype().size_in_bytes()
            })
            .sum()
    }

    /// Whether `other`'s keys lie in this cache's storage: one extends the other in place.
    pub fn shares_storage(&self, other: &KvCache) -> bool {
        let at = |c: &KvCache| {
            c.layers
                .first()
                .map(|(k, _)| &*k.storage_and_layout().0 as *const candle_core::Storage)
        };
        let here = at(self);
        here.is_some() && here == at(other)
    }

    /// Room for positions `len..len + t` of this cache, claimed for one pass that writes
    /// them in place; `None` when the storage is full or a live cache already reaches past
    /// this one's end.
    pub(super) fn claim(&self, t: usize) -> Option<Extension> {
        let room = self.room.as_ref()?;
        let to = self.len.checked_add(t)?;
        if to > room.cap {
            return None;
        }
        room.used
            .compare_exchange(self.len, to, Ordering::AcqRel, Ordering::Acquire)
            .ok()?;
        let claim = Arc::new(Claim {
            used: room.used.clone(),
            from: self.len,
            to,
            _parent: room.claim.clone(),
        });
        Some(Extension {
            from: self.len,
            to,
            storage: Storage::Claimed(Room {
                claim: Some(claim),
                ..room.clone()
            }),
        })
    }
}

/// Where a pass writes the keys and values of its `t` tokens after a cache of `from`
/// positions (see [`KvCache::claim`] and [`Extension::fresh`]).
pub(super) struct Extension {
    from: usize,
    to: usize,
    storage: Storage,
}

enum Storage {
    /// The cache's own room, held by the claim inside (given back if the pass fails).
    Claimed(Room),
    /// New storage with room, each layer's made at its first write: the past copied in.
    Fresh {
        past: Option<Vec<(Tensor, Tensor)>>,
        cap: usize,
        made: Vec<OnceLock<(Tensor, Tensor)>>,
    },
}

impl Extension {
    /// New storage with room for `prefix` (if any) and `t` more positions, for a pass of one
    /// sequence whose cache is kept but that cannot extend `prefix` in place: a copy, as
    /// concatenating was, after which the next word is written in place.
    pub(super) fn fresh(prefix: Option<&KvCache>, t: usize, layers: usize) -> Extension {
        let from = prefix.map_or(0, |c| c.len);
        let to = from + t;
        Extension {
            from,
            to,
            storage: Storage::Fresh {
                past: prefix.map(|c| c.layers.clone()),
                cap: to + room_for(to),
                made: (0..layers).map(|_| OnceLock::new()).collect(),
            },
        }
    }

    /// Writes layer `li`'s new keys and values (`[1, kv_heads, t, head_dim]`, contiguous)
    /// after the cache's own and returns views of the whole of both.
    pub(super) fn write(&self, li: usize, k: &Tensor, v: &Tensor) -> Result<(Tensor, Tensor)> {
        let (fk, fv) = match &self.storage {
            Storage::Claimed(room) => &room.full[li],
            Storage::Fresh { past, cap, made } => {
                let slot = &made[li];
                if slot.get().is_none() {
                    let new = |t: &Tensor, past: Option<&Tensor>| match past {
                        Some(p) => roomy_copy(p, self.from, *cap),
                        None => {
                            let (one, heads, _, d) = t.dims4()?;
                            Tensor::zeros((one, heads, *cap, d), t.dtype(), t.device())
                        }
                    };
                    let p = past.as_ref().map(|p| &p[li]);
                    let _ = slot.set((new(k, p.map(|p| &p.0))?, new(v, p.map(|p| &p.1))?));
                }
                slot.get().unwrap_or_else(|| unreachable!("set above"))
            }
        };
        fk.slice_set(k, 2, self.from)?;
        fv.slice_set(v, 2, self.from)?;
        Ok((fk.narrow(2, 0, self.to)?, fv.narrow(2, 0, self.to)?))
    }

    /// The extended cache, over the views [`Extension::write`] returned for every layer.
    pub(super) fn into_cache(self, layers: Vec<(Tensor, Tensor)>) -> Result<KvCache> {
        let room = match self.storage {
            Storage::Claimed(room) => room,
            Storage::Fresh { cap, made, .. } => {
                let full = made
                    .into_iter()
                    .map(|m| {
                        m.into_inner().ok_or_else(|| {
                            candle_core::Error::Msg("a layer was not written".into())
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                Room::new(full, cap, self.to)
            }
        };
        Ok(KvCache {
            layers,
            len: self.to,
            room: Some(room),
        })
    }
}

/// A cache of the first `len` positions of `layers` (`[1, kv_heads, ≥ len, head_dim]` each,
/// any layout) copied into new storage with [`room_for`] spare positions.
pub(super) fn with_room(layers: &[(Tensor, Tensor)], len: usize) -> Result<KvCache> {
    let cap = len + room_for(len);
    let full = layers
        .iter()
        .map(|(k, v)| Ok((roomy_copy(k, len, cap)?, roomy_copy(v, len, cap)?)))
        .collect::<Result<Vec<_>>>()?;
    let views = full
        .iter()
        .map(|(k, v)| Ok((k.narrow(2, 0, len)?, v.narrow(2, 0, len)?)))
        .collect::<Result<Vec<_>>>()?;
    Ok(KvCache {
        layers: views,
        len,
        room: Some(Room::new(full, cap, len)),
    })
}

/// `[1, heads, cap, d]` zeros with `t`'s first `len` positions copied in, head by head (each
/// head of a view into larger storage is contiguous on its own).
fn roomy_copy(t: &Tensor, len: usize, cap: usize) -> Result<Tensor> {
    let (one, heads, _, d) = t.dims4()?;
    let full = Tensor::zeros((one, heads, cap, d), t.dtype(), t.device())?;
    let src = t.narrow(2, 0, len)?;
    if src.is_contiguous() {
        full.slice_set(&src, 2, 0)?;
    } else {
        for h in 0..heads {
            let src = src.narrow(1, h, 1)?.contiguous()?;
            full.narrow(1, h, 1)?.slice_set(&src, 2, 0)?;
        }
    }
    Ok(full)
}
