// Fused bf16 kernels for the memory-bound steps between the matrix products on a GPU
// (src/model/gpu.rs). Each replaces several generic candle kernels, most of them strided, and
// rounds to bf16 where transformers' eager bf16 computation rounds, so that results stay as
// close to it as the unfused path.
#include <cuda_bf16.h>
#include <math.h>

typedef __nv_bfloat16 bf16;

__device__ __forceinline__ float rnd(float x) { return __bfloat162float(__float2bfloat16(x)); }

// qkv: [b*t, (h + 2*kvh) * d], the fused projection; cos, sin: [t, d/2].
// out: q [b, h, t, d], then k [b, kvh, t, d], then v [b, kvh, t, d], back to back; q and k
// rotated as transformers does in bf16: q*cos + rotate_half(q)*sin, each product rounded.
extern "C" __global__ void dpa_split_heads_rope_bf16(
    const bf16 *qkv, const bf16 *cos, const bf16 *sin, bf16 *out,
    unsigned int b, unsigned int t, unsigned int h, unsigned int kvh, unsigned int d) {
    const unsigned int half = d / 2;
    const unsigned int heads = h + 2 * kvh;
    const unsigned int n = b * t * heads * half;
    for (unsigned int idx = blockIdx.x * blockDim.x + threadIdx.x; idx < n;
         idx += blockDim.x * gridDim.x) {
        const unsigned int i = idx % half;
        const unsigned int rest = idx / half;
        const unsigned int head = rest % heads;
        const unsigned int row = rest / heads;
        const unsigned int tt = row % t;
        const unsigned int bb = row / t;
        const bf16 *src = qkv + (size_t)row * heads * d + (size_t)head * d;
        const float x1 = __bfloat162float(src[i]);
        const float x2 = __bfloat162float(src[i + half]);
        float y1 = x1, y2 = x2;
        bf16 *dst;
        if (head < h + kvh) {
            const float c = __bfloat162float(cos[tt * half + i]);
            const float s = __bfloat162float(sin[tt * half + i]);
            y1 = rnd(x1 * c) + rnd(-x2 * s);
            y2 = rnd(x2 * c) + rnd(x1 * s);
            dst = head < h
                ? out + (((size_t)bb * h + head) * t + tt) * d
                : out + (size_t)b * h * t * d + (((size_t)bb * kvh + (head - h)) * t + tt) * d;
        } else {
            dst = out + (size_t)b * (h + kvh) * t * d
                + (((size_t)bb * kvh + (head - h - kvh)) * t + tt) * d;
        }
        dst[i] = __float2bfloat16(y1);
        dst[i + half] = __float2bfloat16(y2);
    }
}

// x: [b, h, t, d] -> out: [b, t, h*d], in pairs of values (d is even).
extern "C" __global__ void dpa_merge_heads_bf16(
    const __nv_bfloat162 *x, __nv_bfloat162 *out,
    unsigned int b, unsigned int h, unsigned int t, unsigned int d) {
    const unsigned int d2 = d / 2;
    const unsigned int n = b * h * t * d2;
    for (unsigned int idx = blockIdx.x * blockDim.x + threadIdx.x; idx < n;
         idx += blockDim.x * gridDim.x) {
        const unsigned int i = idx % d2;
        unsigned int r = idx / d2;
        const unsigned int hh = r % h;
        r /= h;
        const unsigned int tt = r % t;
        const unsigned int bb = r / t;
        out[idx] = x[(((size_t)bb * h + hh) * t + tt) * d2 + i];
    }
}

__device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o /= 2) v = fmaxf(v, __shfl_xor_sync(0xffffffff, v, o));
    return v;
}

__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o /= 2) v += __shfl_xor_sync(0xffffffff, v, o);
    return v;
}

// scores: [rows, total], rows = groups * n: row r is query row row0 + r % n of its group's
// stacked n_rep*t query rows, so its token is (row0 + r % n) % t, at position p + that.
// probs = softmax over the visible keys (causal, and within `window` when window > 0) of
// round(score * scale), in f32, rounded to bf16; hidden keys get 0. One warp per row.
extern "C" __global__ void dpa_causal_softmax_bf16(
    const bf16 *scores, bf16 *probs, unsigned int rows, unsigned int n, unsigned int total,
    unsigned int t, unsigned int p, unsigned int row0, unsigned int window, float scale) {
    const unsigned int warps = blockDim.x / 32;
    const unsigned int lane = threadIdx.x % 32;
    for (unsigned int r = blockIdx.x * warps + threadIdx.x / 32; r < rows; r += gridDim.x * warps) {
        const unsigned int q = p + (row0 + r % n) % t;
        const unsigned int lo = (window > 0 && q + 1 > window) ? q + 1 - window : 0;
        const bf16 *s = scores + (size_t)r * total;
        bf16 *o = probs + (size_t)r * total;
        float m = -INFINITY;
        for (unsigned int k = lo + lane; k <= q; k += 32) {
            m = fmaxf(m, rnd(__bfloat162float(s[k]) * scale));
        }
        m = warp_max(m);
        float sum = 0.f;
        for (unsigned int k = lo + lane; k <= q; k += 32) {
            sum += expf(rnd(__bfloat162float(s[k]) * scale) - m);
        }
        const float inv = 1.f / warp_sum(sum);
        for (unsigned int k = lane; k < total; k += 32) {
            const float v =
                (k >= lo && k <= q) ? expf(rnd(__bfloat162float(s[k]) * scale) - m) * inv : 0.f;
            o[k] = __float2bfloat16(v);
        }
    }
}

// gu: [rows, 2*inter], gate then up; out: [rows, inter] = silu(gate) * up, silu rounded to bf16
// first as PyTorch's two kernels do. In pairs of values (inter is even).
extern "C" __global__ void dpa_silu_mul_bf16(
    const __nv_bfloat162 *gu, __nv_bfloat162 *out, unsigned int rows, unsigned int inter) {
    const unsigned int i2 = inter / 2;
    const unsigned int n = rows * i2;
    for (unsigned int idx = blockIdx.x * blockDim.x + threadIdx.x; idx < n;
         idx += blockDim.x * gridDim.x) {
        const unsigned int r = idx / i2;
        const unsigned int i = idx % i2;
        const float2 g = __bfloat1622float2(gu[(size_t)r * 2 * i2 + i]);
        const float2 u = __bfloat1622float2(gu[(size_t)r * 2 * i2 + i2 + i]);
        const float s0 = rnd(g.x / (1.f + expf(-g.x)));
        const float s1 = rnd(g.y / (1.f + expf(-g.y)));
        out[idx] = __floats2bfloat162_rn(s0 * u.x, s1 * u.y);
    }
}
