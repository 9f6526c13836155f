// SampleStats' Thrust algorithms on the host: sample_stats_impl.hpp compiled as
// plain C++ for Thrust's CPP system (THRUST_DEVICE_SYSTEM_CPP), where device
// memory is host memory. New scratch and counts start poisoned (HostBackend), and
// each chunk is followed in memory by points that must not be read. A small piece
// size makes every chunk span several pieces, so the merges between pieces run too.
#include <gtest/gtest.h>

#include <iterator>
#include <memory>

#include "host/gpu/sample_stats_impl.hpp"
#include "tests/gpu/sample_stats_cases.hpp"

namespace ddpm::testing {
namespace {

using Accumulator = gpu::detail::StatsAccumulator<gpu::detail::HostBackend>;

class HostStats : public StatsUnderTest {
 public:
  HostStats(int bins, const DensityWindow& w, int64_t piece) : acc_(bins, w, piece) {}
  void add(const Points& chunk) override {
    Points padded = chunk;
    padded.insert(padded.end(), std::begin(kTailPoison), std::end(kTailPoison));
    acc_.add(padded.data(), int64_t(chunk.size() / 2), gpu::detail::HostBackend{});
  }
  gpu::SampleMoments moments() override { return acc_.moments(); }
  DensityGrid histogram() override { return acc_.histogram(); }

 private:
  Accumulator acc_;
};

StatsFactory pieces_of(int64_t piece) {
  return [piece](int bins, const DensityWindow& w) { return std::make_unique<HostStats>(bins, w, piece); };
}

const StatsFactory kDefaultPieces = pieces_of(Accumulator::kDefaultPiece);
const StatsFactory kSmallPieces = pieces_of(4099);

TEST(SampleStatsHost, RandomChunksMatchTheReferences) {
  check_random_chunks(kDefaultPieces);
  check_random_chunks(kSmallPieces);
}

TEST(SampleStatsHost, PointsOutsideTheWindowLandInTheEdgeCells) {
  check_points_outside_the_window(kDefaultPieces);
  check_points_outside_the_window(kSmallPieces);
}

TEST(SampleStatsHost, FarFromTheOriginTheVarianceKeepsItsDigits) {
  check_far_from_the_origin(kDefaultPieces);
  check_far_from_the_origin(pieces_of(1));  // every point its own piece: the merge alone
}

TEST(SampleStatsHost, HistogramAndMomentsCanBeReadBetweenChunks) { check_incremental_reads(kSmallPieces); }

TEST(SampleStatsHost, NoFinitePoints) { check_no_finite_points(kSmallPieces); }

TEST(SampleStatsHost, RejectsBadArguments) {
  check_bad_arguments(kDefaultPieces);
  Accumulator acc(10, {0, 1, 0, 1});
  const float xy[2] = {0.5f, 0.5f};
  EXPECT_THROW(acc.add(xy, -1, gpu::detail::HostBackend{}), Error);
  EXPECT_THROW(acc.add(nullptr, 3, gpu::detail::HostBackend{}), Error);
  EXPECT_NO_THROW(acc.add(nullptr, 0, gpu::detail::HostBackend{}));
  EXPECT_EQ(acc.moments().n, 0);
}

}  // namespace
}  // namespace ddpm::testing
