//! The few vector operations the few-row attention needs, one implementation per instruction
//! set, so that one generic body serves them all. Every function is `unsafe`: callers must have
//! the instruction set and pass pointers to `N` readable (or writable) floats.

/// A vector of `N` f32 lanes.
pub trait Lanes {
    type V: Copy;
    const N: usize;
    unsafe fn zero() -> Self::V;
    unsafe fn splat(x: f32) -> Self::V;
    unsafe fn load(p: *const f32) -> Self::V;
    unsafe fn store(p: *mut f32, v: Self::V);
    /// `a·b + c`.
    unsafe fn fma(a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    unsafe fn mul(a: Self::V, b: Self::V) -> Self::V;
    /// The sum of the lanes.
    unsafe fn sum(v: Self::V) -> f32;
    /// `out[i·R + r]` = the sum of `acc[i][r]`'s lanes, for `K · R` floats at `out`.
    #[inline(always)]
    unsafe fn sums<const K: usize, const R: usize>(acc: &[[Self::V; R]; K], out: *mut f32) {
        sums_each::<Self, K, R>(acc, out)
    }
}

/// [`Lanes::sums`] one vector at a time, with [`Lanes::sum`]: what a set of lanes without a
/// joint reduction for `K · R` vectors does.
#[inline(always)]
unsafe fn sums_each<S: Lanes + ?Sized, const K: usize, const R: usize>(
    acc: &[[S::V; R]; K],
    out: *mut f32,
) {
    for (i, acc) in acc.iter().enumerate() {
        for (r, &v) in acc.iter().enumerate() {
            *out.add(i * R + r) = S::sum(v);
        }
    }
}

/// One lane, plain multiply and add (no FMA instruction assumed).
pub struct Scalar;

impl Lanes for Scalar {
    type V = f32;
    const N: usize = 1;
    #[inline(always)]
    unsafe fn zero() -> f32 {
        0.0
    }
    #[inline(always)]
    unsafe fn splat(x: f32) -> f32 {
        x
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> f32 {
        *p
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, v: f32) {
        *p = v;
    }
    #[inline(always)]
    unsafe fn fma(a: f32, b: f32, c: f32) -> f32 {
        a * b + c
    }
    #[inline(always)]
    unsafe fn mul(a: f32, b: f32) -> f32 {
        a * b
    }
    #[inline(always)]
    unsafe fn sum(v: f32) -> f32 {
        v
    }
}

#[cfg(target_arch = "x86_64")]
pub use x86::{Avx2, Avx512};

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::Lanes;

    /// 8 lanes, AVX2 and FMA.
    pub struct Avx2;

    impl Lanes for Avx2 {
        type V = __m256;
        const N: usize = 8;
        #[inline(always)]
        unsafe fn zero() -> __m256 {
            _mm256_setzero_ps()
        }
        #[inline(always)]
        unsafe fn splat(x: f32) -> __m256 {
            _mm256_set1_ps(x)
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> __m256 {
            _mm256_loadu_ps(p)
        }
        #[inline(always)]
        unsafe fn store(p: *mut f32, v: __m256) {
            _mm256_storeu_ps(p, v)
        }
        #[inline(always)]
        unsafe fn fma(a: __m256, b: __m256, c: __m256) -> __m256 {
            _mm256_fmadd_ps(a, b, c)
        }
        #[inline(always)]
        unsafe fn mul(a: __m256, b: __m256) -> __m256 {
            _mm256_mul_ps(a, b)
        }
        #[inline(always)]
        unsafe fn sum(v: __m256) -> f32 {
            let x = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
            let x = _mm_add_ps(x, _mm_movehl_ps(x, x));
            let x = _mm_add_ss(x, _mm_movehdup_ps(x));
            _mm_cvtss_f32(x)
        }
        /// Eight vectors (two keys by four rows) reduced together: six horizontal adds and
        /// one of halves for the 8 sums.
        #[inline(always)]
        unsafe fn sums<const K: usize, const R: usize>(acc: &[[__m256; R]; K], out: *mut f32) {
            if K * R != 8 {
                return super::sums_each::<Self, K, R>(acc, out);
            }
            // SAFETY: K · R = 8 vectors, laid out in order.
            let v = &*(acc as *const [[__m256; R]; K] as *const [__m256; 8]);
            // Each 128-bit half of `low` holds four lanes per v[0..4] that sum to that half of
            // theirs, in order; `high` the same for v[4..8].
            let low = _mm256_hadd_ps(_mm256_hadd_ps(v[0], v[1]), _mm256_hadd_ps(v[2], v[3]));
            let high = _mm256_hadd_ps(_mm256_hadd_ps(v[4], v[5]), _mm256_hadd_ps(v[6], v[7]));
            let all = _mm256_add_ps(
                _mm256_permute2f128_ps::<0x20>(low, high),
                _mm256_permute2f128_ps::<0x31>(low, high),
            );
            _mm256_storeu_ps(out, all);
        }
    }

    /// `a`, `b`, `c`, `d` to one vector whose 128-bit parts hold four lanes each that sum to
    /// theirs, in that order.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn quarter(a: __m512, b: __m512, c: __m512, d: __m512) -> __m512 {
        let ab = _mm512_add_ps(
            _mm512_shuffle_f32x4::<0x44>(a, b),
            _mm512_shuffle_f32x4::<0xEE>(a, b),
        );
        let cd = _mm512_add_ps(
            _mm512_shuffle_f32x4::<0x44>(c, d),
            _mm512_shuffle_f32x4::<0xEE>(c, d),
        );
        _mm512_add_ps(
            _mm512_shuffle_f32x4::<0x88>(ab, cd),
            _mm512_shuffle_f32x4::<0xDD>(ab, cd),
        )
    }

    /// 16 lanes, AVX-512F.
    pub struct Avx512;

    impl Lanes for Avx512 {
        type V = __m512;
        const N: usize = 16;
        #[inline(always)]
        unsafe fn zero() -> __m512 {
            _mm512_setzero_ps()
        }
        #[inline(always)]
        unsafe fn splat(x: f32) -> __m512 {
            _mm512_set1_ps(x)
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> __m512 {
            _mm512_loadu_ps(p)
        }
        #[inline(always)]
        unsafe fn store(p: *mut f32, v: __m512) {
            _mm512_storeu_ps(p, v)
        }
        #[inline(always)]
        unsafe fn fma(a: __m512, b: __m512, c: __m512) -> __m512 {
            _mm512_fmadd_ps(a, b, c)
        }
        #[inline(always)]
        unsafe fn mul(a: __m512, b: __m512) -> __m512 {
            _mm512_mul_ps(a, b)
        }
        #[inline(always)]
        unsafe fn sum(v: __m512) -> f32 {
            _mm512_reduce_add_ps(v)
        }
        /// Sixteen vectors (four keys by four rows, or two by eight) reduced together: 45
        /// shuffles and adds for the 16 sums, where one vector's reduction alone takes 8.
        #[inline(always)]
        unsafe fn sums<const K: usize, const R: usize>(acc: &[[__m512; R]; K], out: *mut f32) {
            if K * R != 16 {
                return super::sums_each::<Self, K, R>(acc, out);
            }
            // SAFETY: K · R = 16 vectors, laid out in order.
            let v = &*(acc as *const [[__m512; R]; K] as *const [__m512; 16]);
            // Four vectors v[c·4 + l] (c = 0..4) to one whose 128-bit part c holds four lanes
            // that sum to v[c·4 + l]'s lanes: halves, then quarters. (No closures here: they
            // would not inherit the caller's target features, and the intrinsics would become
            // calls.)
            let quarters = [
                quarter(v[0], v[4], v[8], v[12]),
                quarter(v[1], v[5], v[9], v[13]),
                quarter(v[2], v[6], v[10], v[14]),
                quarter(v[3], v[7], v[11], v[15]),
            ];
            // Within each 128-bit part c, the four lanes of quarters[l] to lane l: lane
            // 4c + l is then v[4c + l]'s sum, the order of `out`.
            let q01 = _mm512_add_ps(
                _mm512_unpacklo_ps(quarters[0], quarters[1]),
                _mm512_unpackhi_ps(quarters[0], quarters[1]),
            );
            let q23 = _mm512_add_ps(
                _mm512_unpacklo_ps(quarters[2], quarters[3]),
                _mm512_unpackhi_ps(quarters[2], quarters[3]),
            );
            let all = _mm512_add_ps(
                _mm512_shuffle_ps::<0x44>(q01, q23),
                _mm512_shuffle_ps::<0xEE>(q01, q23),
            );
            _mm512_storeu_ps(out, all);
        }
    }
}
