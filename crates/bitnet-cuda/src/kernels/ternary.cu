// Ternary × int8 GEMV for decode (see layout.rs for the weight layout), compiled at run time
// by NVRTC. One warp per row: each lane loads 64 columns of packed weights with one 128-bit
// load per step (a warp reads 2 KiB of the row, coalesced), expands each 16-column word with
// shifts and masks into four dp4a operands, and dots them against the activations, which the
// block first copies to shared memory (swizzled so that the warp's 16-byte reads hit distinct
// banks). T tokens share every weight load. The integer sum is exact; the epilogue is the
// CPU's `finish`: (Σu·x − Σx) as float / x_scale · scale, IEEE division and multiplication.
// `scales` holds one scale per row, so several matrices stacked into one (q, k, v; gate, up)
// run in one launch with their own scales.

typedef unsigned int u32;
typedef signed char i8;

// 16-byte unit u of a token's activations lives at unit swz(u) in shared memory: within each
// aligned group of 4 units the low bits are XORed with bits 3..4, so the 8 lanes of a phase,
// which read units 4c + q for 8 consecutive c, touch 8 distinct 16-byte bank groups.
__device__ __forceinline__ int swz(int u) { return u ^ ((u >> 3) & 3); }

template <int T>
__device__ __forceinline__ void gemv_body(const uint4* __restrict__ w, const uint4* __restrict__ x,
                                          const float* __restrict__ xs, const int* __restrict__ xsum,
                                          const float* __restrict__ scales, int rows, int cols_pad,
                                          float* __restrict__ out) {
    extern __shared__ uint4 sx[];
    const int units = cols_pad / 16;  // 16-byte units of one token
    for (int i = threadIdx.x; i < T * units; i += blockDim.x) {
        const int t = i / units, u = i - t * units;
        sx[t * units + swz(u)] = x[t * units + u];
    }
    __syncthreads();
    const int lane = threadIdx.x & 31;
    const int r = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (r >= rows) return;  // whole warp: no barrier follows
    const int steps = cols_pad / 64;  // 128-bit weight loads per row
    const uint4* wr = w + (size_t)r * steps;
    int acc[T];
#pragma unroll
    for (int t = 0; t < T; t++) acc[t] = 0;
    for (int c = lane; c < steps; c += 32) {
        const uint4 wv = __ldg(wr + c);
        const u32 ww[4] = {wv.x, wv.y, wv.z, wv.w};
#pragma unroll
        for (int q = 0; q < 4; q++) {
            const int ux = swz(4 * c + q);
#pragma unroll
            for (int t = 0; t < T; t++) {
                const uint4 xv = sx[t * units + ux];
                const int xi[4] = {(int)xv.x, (int)xv.y, (int)xv.z, (int)xv.w};
#pragma unroll
                for (int s = 0; s < 4; s++)
                    acc[t] = __dp4a((int)((ww[q] >> (2 * s)) & 0x03030303u), xi[s], acc[t]);
            }
        }
    }
#pragma unroll
    for (int t = 0; t < T; t++) {
        int v = acc[t];
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
        if (lane == 0) out[(size_t)t * rows + r] = __fmul_rn(__fdiv_rn((float)(v - xsum[t]), xs[t]), scales[r]);
    }
}

#define GEMV(T)                                                                                 \
    extern "C" __global__ void ternary_gemv_t##T(const uint4* __restrict__ w,                  \
                                                 const uint4* __restrict__ x,                  \
                                                 const float* __restrict__ xs,                 \
                                                 const int* __restrict__ xsum, const float* __restrict__ scales, \
                                                 int rows, int cols_pad, float* __restrict__ out) { \
        gemv_body<T>(w, x, xs, xsum, scales, rows, cols_pad, out);                              \
    }
GEMV(1)
GEMV(2)
GEMV(4)
GEMV(8)

// One token, activations read through L1 (no shared-memory staging, no barrier): each warp
// owns R consecutive rows and streams them side by side, so every lane has R independent
// 128-bit weight loads in flight per step, and each 16-byte activation load feeds R rows.
template <int R>
__device__ __forceinline__ void gemv1_body(const uint4* __restrict__ w, const uint4* __restrict__ x,
                                           const float* __restrict__ xs, const int* __restrict__ xsum,
                                           const float* __restrict__ scales, int rows, int cols_pad,
                                           float* __restrict__ out) {
    const int lane = threadIdx.x & 31;
    const int r0 = (blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5)) * R;
    if (r0 >= rows) return;
    const int steps = cols_pad / 64;
    const uint4* wr[R];
#pragma unroll
    for (int i = 0; i < R; i++) wr[i] = w + (size_t)min(r0 + i, rows - 1) * steps;
    int acc[R];
#pragma unroll
    for (int i = 0; i < R; i++) acc[i] = 0;
    for (int c = lane; c < steps; c += 32) {
        uint4 wv[R];
#pragma unroll
        for (int i = 0; i < R; i++) wv[i] = __ldg(wr[i] + c);
#pragma unroll
        for (int q = 0; q < 4; q++) {
            const uint4 xv = __ldg(x + 4 * c + q);
            const int xi[4] = {(int)xv.x, (int)xv.y, (int)xv.z, (int)xv.w};
#pragma unroll
            for (int i = 0; i < R; i++) {
                const u32 wq = q == 0 ? wv[i].x : q == 1 ? wv[i].y : q == 2 ? wv[i].z : wv[i].w;
#pragma unroll
                for (int s = 0; s < 4; s++)
                    acc[i] = __dp4a((int)((wq >> (2 * s)) & 0x03030303u), xi[s], acc[i]);
            }
        }
    }
#pragma unroll
    for (int i = 0; i < R; i++) {
        int v = acc[i];
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
        if (lane == 0 && r0 + i < rows)
            out[r0 + i] = __fmul_rn(__fdiv_rn((float)(v - xsum[0]), xs[0]), scales[r0 + i]);
    }
}

#define GEMV1(R)                                                                                \
    extern "C" __global__ void ternary_gemv1_r##R(const uint4* __restrict__ w,                 \
                                                  const uint4* __restrict__ x,                 \
                                                  const float* __restrict__ xs,                \
                                                  const int* __restrict__ xsum, const float* __restrict__ scales, \
                                                  int rows, int cols_pad, float* __restrict__ out) { \
        gemv1_body<R>(w, x, xs, xsum, scales, rows, cols_pad, out);                             \
    }
GEMV1(1)
GEMV1(2)
GEMV1(4)
