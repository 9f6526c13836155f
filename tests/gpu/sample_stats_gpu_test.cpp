// SampleStats built for CUDA, held to the same references as its host build;
// skipped with the reason where no CUDA device exists. Chunks are read on a
// non-blocking stream and sit in device memory followed by points that must not
// be read; before each SampleStats is made, freed device memory is filled with a
// poison pattern, which new allocations are likely to reuse: counts that are not
// zeroed would show.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <iterator>
#include <memory>

#include "ddpm/cuda_check.hpp"
#include "host/gpu/sample_stats.hpp"
#include "tests/gpu/sample_stats_cases.hpp"
#include "tests/gpu_util.hpp"

namespace ddpm::testing {
namespace {

void poison_free_device_memory() {
  DeviceBuffer<unsigned char> junk(std::size_t(256) << 20);
  DDPM_CUDA_CHECK(cudaMemset(junk.get(), 0xA5, std::size_t(256) << 20));
  DDPM_CUDA_CHECK(cudaDeviceSynchronize());
}

class DeviceStats : public StatsUnderTest {
 public:
  DeviceStats(int bins, const DensityWindow& w, cudaStream_t stream) : stats_(bins, w), stream_(stream) {}
  void add(const Points& chunk) override {
    Points padded = chunk;
    padded.insert(padded.end(), std::begin(kTailPoison), std::end(kTailPoison));
    DeviceBuffer<float> xy(padded);
    // A copy from pageable memory may still be in flight when cudaMemcpy returns, and
    // the non-blocking stream does not wait for the default one.
    DDPM_CUDA_CHECK(cudaDeviceSynchronize());
    stats_.add(xy.get(), int64_t(chunk.size() / 2), stream_);
  }
  gpu::SampleMoments moments() override { return stats_.moments(); }
  DensityGrid histogram() override { return stats_.histogram(); }

 private:
  gpu::SampleStats stats_;
  cudaStream_t stream_;
};

class SampleStatsGpu : public ::testing::Test {
 protected:
  void SetUp() override {
    if (const std::string why = no_device_reason(); !why.empty()) GTEST_SKIP() << why;
    DDPM_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    make_ = [this](int bins, const DensityWindow& w) {
      poison_free_device_memory();
      return std::make_unique<DeviceStats>(bins, w, stream_);
    };
  }
  void TearDown() override {
    if (stream_) DDPM_CUDA_CHECK(cudaStreamDestroy(stream_));
  }
  cudaStream_t stream_ = nullptr;
  StatsFactory make_;
};

TEST_F(SampleStatsGpu, RandomChunksMatchTheReferences) { check_random_chunks(make_); }
TEST_F(SampleStatsGpu, PointsOutsideTheWindowLandInTheEdgeCells) { check_points_outside_the_window(make_); }
TEST_F(SampleStatsGpu, FarFromTheOriginTheVarianceKeepsItsDigits) { check_far_from_the_origin(make_); }
TEST_F(SampleStatsGpu, HistogramAndMomentsCanBeReadBetweenChunks) { check_incremental_reads(make_); }
TEST_F(SampleStatsGpu, NoFinitePoints) { check_no_finite_points(make_); }

TEST_F(SampleStatsGpu, RejectsBadArguments) {
  check_bad_arguments(make_);
  gpu::SampleStats stats(10, 0, 1, 0, 1);
  DeviceBuffer<float> xy(std::vector<float>{0.5f, 0.5f});
  DDPM_CUDA_CHECK(cudaDeviceSynchronize());
  EXPECT_THROW(stats.add(xy.get(), -1, stream_), Error);
  EXPECT_THROW(stats.add(nullptr, 3, stream_), Error);
  EXPECT_NO_THROW(stats.add(nullptr, 0, stream_));
  stats.add(xy.get(), 1, stream_);
  EXPECT_EQ(stats.moments().n, 1);
  EXPECT_EQ(stats.histogram().counts[5 * 10 + 5], 1u);  // row 5 from the top, column 5
}

}  // namespace
}  // namespace ddpm::testing
