// Message tags: who owns which part of the 64-bit tag space. A receive matches a message by
// (sender, tag), so two exchanges that could be in flight between the same nodes at the same
// time must use different tags. Every tag in dtsim is made here.
//
//   bits 28..63  the global step + 1, for exchanges that belong to a step (step_tag)
//   bits 24..27  which collective of that step (several per step: PowerSGD's rounds)
//   bits 20..23  a collective's phase (reduce-scatter, allgather, inside / across machines)
//   bits  0..19  the round within a phase (ring step k, halving-doubling distance)
//   small tags   (below 2^20) exchanges that do not belong to one step: a parameter server's
//                requests and answers, gossip's averaging messages
#pragma once

#include <cstdint>
#include <stdexcept>

namespace dtsim::tags {

inline constexpr int kPhaseShift = 20;
inline constexpr int kCollectiveShift = 24;
inline constexpr int kStepShift = 28;

// A collective's phase `phase` of a call made with tag `base`.
constexpr std::uint64_t phase(std::uint64_t base, std::uint64_t phase) {
  return base + (phase << kPhaseShift);
}
// The exchanges of global step `step` (0-based).
constexpr std::uint64_t step_tag(std::uint64_t step) { return (step + 1) << kStepShift; }
// Collectives one step may hold.
inline constexpr std::uint64_t kCollectivesPerStep = 1ULL << (kStepShift - kCollectiveShift);

// The i-th collective of global step `step` (i < kCollectivesPerStep). Collective i = 0 also
// holds a step's point-to-point messages (micro_batch_tag, answer_to).
constexpr std::uint64_t collective_tag(std::uint64_t step, std::uint64_t i) {
  if (i >= kCollectivesPerStep) throw std::logic_error("tags: too many collectives in one step");
  return step_tag(step) + (i << kCollectiveShift);
}

// Point-to-point messages of micro-batch j in step `step`: forward activations, or backward
// gradients (a pipeline's stages; j < 2^20).
constexpr std::uint64_t micro_batch_tag(std::uint64_t step, bool backward, std::uint64_t j) {
  return phase(step_tag(step), backward ? 1 : 0) + j;
}

// The answer to a message of tag `tag`, in the same exchange (a server's reply to a push): the
// next round of the same phase.
constexpr std::uint64_t answer_to(std::uint64_t tag) { return tag + 1; }

// Exchanges outside the step structure.
inline constexpr std::uint64_t kRequest = 1;  // a worker to a server, or a gossip request
inline constexpr std::uint64_t kAnswer = 2;   // the answer
inline constexpr std::uint64_t kRejoin = 3;   // the model a restarted worker rejoins with

}  // namespace dtsim::tags
