// Philox-4x32-10 uniforms, the numbers TensorFlow's StatelessRandomUniformV2
// gives for the same key and counter, with the rounds vectorised, and
// Box-Muller normals on them in the same pass.
//
//   KnsdePhiloxUniform(shape, key, counter) -> (shape) float32 in [0, 1)
//   KnsdePhiloxNormal(shape, key, counter)  -> (shape) float32 standard normals:
//       with n = size, h = ceil(n / 2), u_j = uniform j and v_j = uniform h + j of the stream,
//       r_j = sqrt(-2 log1p(-u_j)), a_j = 2 pi v_j:
//       element j = r_j cos(a_j) (j < h), element h + j = r_j sin(a_j) (j < n - h),
//       which is keras_nsde.backend.generic.box_muller on KnsdePhiloxUniform([2, h]);
//       one pass instead of a Philox kernel and eight element-wise ones
//       (Eigen's vectorised log1p, sqrt, cos and sin, as TensorFlow's ops use).
//
// TensorFlow fills element i from the Philox block of counter + i / 4
// (a 128-bit sum), word i % 4, as float(0x3f800000 | (word & 0x7fffff)) - 1.
// Its kernel runs the ten rounds of one block at a time; here 16 blocks go
// through them together (lane-wise 32x32 -> 64-bit products), which the
// compiler turns into vector instructions. Same bits, a fraction of the time.

#include <algorithm>
#include <cmath>
#include <cstring>

#include "Eigen/Core"

#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"
#include "tensorflow/core/framework/tensor_shape.h"
#include "knsde_common.h"

namespace {

using namespace knsde;  // TensorFlow's kernel names, InvalidArgument, Status (knsde_common.h)

// Both ops' output has the shape the `shape` input holds.
Status ShapeFromShapeInput(InferenceContext* c) {
  ShapeHandle out;
  TF_RETURN_IF_ERROR(c->MakeShapeFromShapeTensor(0, &out));
  c->set_output(0, out);
  return knsde::Ok();
}

REGISTER_OP("KnsdePhiloxUniform")
    .Input("shape: int64").Input("key: uint64").Input("counter: uint64")
    .Output("output: float")
    .SetShapeFn(ShapeFromShapeInput);

REGISTER_OP("KnsdePhiloxNormal")
    .Input("shape: int64").Input("key: uint64").Input("counter: uint64")
    .Output("output: float")
    .SetShapeFn(ShapeFromShapeInput);

constexpr uint64_t kMultiplierA = 0xD2511F53, kMultiplierB = 0xCD9E8D57;  // Philox-4x32 (Salmon et al., 2011)
constexpr uint64_t kWeylA = 0x9E3779B9, kWeylB = 0xBB67AE85;              // the key's increments per round
constexpr int kLanes = 16;                                                 // blocks per pass through the rounds

inline float Uint32ToUnitFloat(uint32_t word) {  // TensorFlow's Uint32ToFloat: 23 random mantissa bits in [1, 2), minus 1
  const uint32_t bits = 0x3f800000u | (word & 0x7fffffu);
  float value;
  std::memcpy(&value, &bits, sizeof(value));
  return value - 1.0f;
}

// The 4 words of blocks first_block .. first_block + kLanes - 1 into words[lane * 4 + i].
// The words live in 64-bit lanes (always below 2^32), so each round's
// products are lane-wise 32x32 -> 64-bit multiplications the compiler vectorises.
void PhiloxBlocks(const uint32_t key[2], const uint32_t counter[4], uint64_t first_block, uint32_t* words) {
  constexpr uint64_t kLow = 0xffffffffu;
  uint64_t c0[kLanes], c1[kLanes], c2[kLanes], c3[kLanes];
  const uint64_t low = (uint64_t{counter[1]} << 32) | counter[0];
  const uint64_t high = (uint64_t{counter[3]} << 32) | counter[2];
  for (int lane = 0; lane < kLanes; ++lane) {  // counter + block as 128-bit integers
    const uint64_t sum_low = low + (first_block + lane);
    const uint64_t sum_high = high + (sum_low < low ? 1 : 0);
    c0[lane] = sum_low & kLow;
    c1[lane] = sum_low >> 32;
    c2[lane] = sum_high & kLow;
    c3[lane] = sum_high >> 32;
  }
  uint64_t k0 = key[0], k1 = key[1];
  for (int round = 0; round < 10; ++round) {
    for (int lane = 0; lane < kLanes; ++lane) {
      const uint64_t product_a = kMultiplierA * (c0[lane] & kLow);
      const uint64_t product_b = kMultiplierB * (c2[lane] & kLow);
      const uint64_t n0 = (product_b >> 32) ^ c1[lane] ^ k0;
      const uint64_t n2 = (product_a >> 32) ^ c3[lane] ^ k1;
      c1[lane] = product_b & kLow;
      c3[lane] = product_a & kLow;
      c0[lane] = n0;
      c2[lane] = n2;
    }
    k0 = (k0 + kWeylA) & kLow;
    k1 = (k1 + kWeylB) & kLow;
  }
  for (int lane = 0; lane < kLanes; ++lane) {
    words[4 * lane + 0] = static_cast<uint32_t>(c0[lane]);
    words[4 * lane + 1] = static_cast<uint32_t>(c1[lane]);
    words[4 * lane + 2] = static_cast<uint32_t>(c2[lane]);
    words[4 * lane + 3] = static_cast<uint32_t>(c3[lane]);
  }
}

// Uniforms first .. first + count - 1 of the stream (element i: block i / 4, word i % 4).
void PhiloxUniforms(const uint32_t key[2], const uint32_t counter[4], int64_t first, int64_t count, float* out) {
  uint32_t words[4 * kLanes];
  for (int64_t i = 0; i < count;) {
    const int64_t block = (first + i) / 4, offset = first + i - 4 * block;
    PhiloxBlocks(key, counter, static_cast<uint64_t>(block), words);
    const int64_t n = std::min<int64_t>(4 * kLanes - offset, count - i);
    for (int64_t j = 0; j < n; ++j) out[i + j] = Uint32ToUnitFloat(words[offset + j]);
    i += n;
  }
}

// What both ops share: checking the key and counter, allocating the output;
// each op fills the output with its numbers (Fill).
class PhiloxOp : public OpKernel {
 public:
  using OpKernel::OpKernel;

  void Compute(OpKernelContext* ctx) final {
    const Tensor& key_tensor = ctx->input(1);
    const Tensor& counter_tensor = ctx->input(2);
    OP_REQUIRES(ctx, key_tensor.NumElements() == 1 && counter_tensor.NumElements() == 2,
                InvalidArgument(type_string(), ": key must hold 1 and counter 2 uint64 (Philox), got ",
                                key_tensor.NumElements(), " and ", counter_tensor.NumElements()));
    TensorShape shape;
    OP_REQUIRES_OK(ctx, tensorflow::TensorShapeUtils::MakeShape(ctx->input(0).vec<int64_t>(), &shape));
    Tensor* output_tensor = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, shape, &output_tensor));
    const uint64_t key64 = key_tensor.flat<uint64_t>()(0);
    const uint64_t counter_low = counter_tensor.flat<uint64_t>()(0), counter_high = counter_tensor.flat<uint64_t>()(1);
    const uint32_t key[2] = {static_cast<uint32_t>(key64), static_cast<uint32_t>(key64 >> 32)};
    const uint32_t counter[4] = {static_cast<uint32_t>(counter_low), static_cast<uint32_t>(counter_low >> 32),
                                 static_cast<uint32_t>(counter_high), static_cast<uint32_t>(counter_high >> 32)};
    Fill(ctx, key, counter, output_tensor->flat<float>().data(), shape.num_elements());
  }

 protected:
  virtual void Fill(OpKernelContext* ctx, const uint32_t key[2], const uint32_t counter[4], float* out, int64_t size) = 0;
};

class PhiloxUniformOp : public PhiloxOp {
 public:
  using PhiloxOp::PhiloxOp;

 protected:
  void Fill(OpKernelContext* ctx, const uint32_t key[2], const uint32_t counter[4], float* out, int64_t size) override {
    constexpr int64_t kChunk = 4 * kLanes;  // floats per pass
    knsde::ParallelFor(ctx, (size + kChunk - 1) / kChunk, 40 * kChunk, [&](int64_t begin, int64_t end) {
      const int64_t first = begin * kChunk;
      PhiloxUniforms(key, counter, first, std::min(end * kChunk, size) - first, out + first);
    });
  }
};

class PhiloxNormalOp : public PhiloxOp {
 public:
  using PhiloxOp::PhiloxOp;

 protected:
  void Fill(OpKernelContext* ctx, const uint32_t key[2], const uint32_t counter[4], float* out, int64_t size) override {
    const int64_t half = (size + 1) / 2;
    constexpr int64_t kPairs = 1024;  // pairs per pass: u, v, r and a stay in L1
    using Array = Eigen::Array<float, Eigen::Dynamic, 1>;
    knsde::ParallelFor(ctx, (half + kPairs - 1) / kPairs, 120 * kPairs, [&](int64_t begin, int64_t end) {
      float u[kPairs], v[kPairs], radius[kPairs], angle[kPairs];
      for (int64_t chunk = begin; chunk < end; ++chunk) {
        const int64_t first = chunk * kPairs, n = std::min(kPairs, half - first);
        PhiloxUniforms(key, counter, first, n, u);
        PhiloxUniforms(key, counter, half + first, n, v);
        Eigen::Map<Array> r(radius, n), a(angle, n);
        r = (-2.0f * (-Eigen::Map<const Array>(u, n)).log1p()).sqrt();  // 1 - u in (0, 1]: finite
        a = Eigen::Map<const Array>(v, n) * static_cast<float>(2.0 * M_PI);
        Eigen::Map<Array>(out + first, n) = r * a.cos();
        const int64_t sines = std::min(n, size - half - first);  // the second half holds size - half normals
        if (sines > 0) Eigen::Map<Array>(out + half + first, sines) = r.head(sines) * a.head(sines).sin();
      }
    });
  }
};

REGISTER_KERNEL_BUILDER(Name("KnsdePhiloxUniform").Device(DEVICE_CPU).HostMemory("shape"), PhiloxUniformOp);
REGISTER_KERNEL_BUILDER(Name("KnsdePhiloxNormal").Device(DEVICE_CPU).HostMemory("shape"), PhiloxNormalOp);

}  // namespace
