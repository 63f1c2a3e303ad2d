// A gradient codec, in the GRACE shape (Xu et al., ICDCS 2021), the way a Layer is one: n
// floats to a payload of real bytes and back, with the size of that payload known in advance.
//
// Every codec has a gathered form (encode / decode a payload; the payloads are gathered and
// decoded by every receiver), except PowerSGD. Codecs whose payloads can be summed
// element-wise also have a summed form, to ride an allreduce: `rounds()` allreduces per step,
// each over the parts the codec hands out (its own buffers, summed in place), then finish()
// turns the last sums into the mean. Error feedback is not a codec's business: Compressor
// (engine/compress.hpp) wraps a codec with its memory.
//
// A codec belongs to one worker (and one parameter-server shard's part), is used by one
// thread at a time, and allocates its workspaces once. The codecs and their table:
// engine/codecs/README.md.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "engine/param_layout.hpp"
#include "engine/rng.hpp"

namespace dtsim {

struct CodecConfig;
using Payload = std::vector<std::uint8_t>;

// Who uses a codec: the keys of its random streams, and the model's tensors (PowerSGD).
struct CodecSetup {
  std::size_t n = 0;                    // elements
  std::uint64_t seed = 0;               // the run's seed
  int worker = 0;                       // -1: a decoder (a parameter server's shard)
  int stream = 0;                       // a parameter server's shard, < 4096
  const ParamLayout* layout = nullptr;  // may be null: one flat tensor
};

// Part of a round of the summed form: values to allreduce (sum), in the codec's buffer.
struct SumPart {
  std::span<float> values;          // empty in time-only mode
  std::size_t elements = 0;         // = values.size() with real data
  std::uint64_t element_bytes = 4;  // on the wire (fp16 / bf16 values travel as 2 bytes)
};

class Codec {
 public:
  explicit Codec(const CodecSetup& setup) : setup_(setup) {}
  virtual ~Codec() = default;
  Codec(const Codec&) = delete;
  Codec& operator=(const Codec&) = delete;

  std::size_t size() const { return setup_.n; }

  // Changes x in place before it is encoded, where the codec transforms its input (TernGrad
  // clips it); error feedback then remembers what the transformed x lost.
  virtual void prepare(std::span<float> /*x*/) const {}

  // ---- gathered form ----
  // Bytes of encode()'s payload at `step`.
  virtual std::uint64_t payload_size(std::uint64_t step) const = 0;
  // The payload of x (n elements), into `out` (resized).
  virtual void encode(std::span<const float> x, std::uint64_t step, Payload& out) = 0;
  // Overwrites `out` (n elements) with the payload's values. Throws std::invalid_argument on a
  // payload of the wrong size.
  virtual void decode(std::span<const std::uint8_t> payload, std::uint64_t step,
                      std::span<float> out) const = 0;
  // The elements the last encode() sent exactly (a sparsifier's indices, ascending), for DGC's
  // masking; empty for the other codecs.
  virtual std::span<const std::uint32_t> sent_indices() const { return {}; }
  // Elements kept at `step` by a sparsifier (top-k's warm-up keeps more at first); n for the
  // others.
  virtual std::size_t kept(std::uint64_t /*step*/) const { return size(); }

  // ---- summed form ----
  // Allreduces per step; 0: the payloads can only be gathered.
  virtual int rounds() const { return 0; }
  // Share of the encoding cost charged to round r's job.
  virtual double round_share(int /*r*/) const { return 1.0 / rounds(); }
  // Round r's parts (their sizes, and in a run with numerics their values after
  // encode_round(r)); an allreduce sums each in place.
  virtual std::vector<SumPart> parts(int r, std::uint64_t step) = 0;
  // Fills round r's parts from x (and, after round 0, the previous round's sums).
  virtual void encode_round(int r, std::span<const float> x, std::uint64_t step, int p) = 0;
  // From the last round's sums over p workers: the mean (or its approximation) into `out`,
  // and what counts as sent of x, for error feedback, into `sent`.
  virtual void finish(std::span<const float> x, std::uint64_t step, int p, std::span<float> out,
                      std::span<float> sent) = 0;

 protected:
  const CodecSetup& setup() const { return setup_; }
  // A worker's own random stream (QSGD, TernGrad) at `step`, and the one every worker shares
  // (random-k's indices, PowerSGD's first Q); `stream` tells a parameter server's shards apart.
  RngKey own_key(std::uint64_t step) const;
  RngKey shared_key(std::uint64_t step) const;

 private:
  CodecSetup setup_;
};

// A codec that has only the gathered form.
class GatheredCodec : public Codec {
 public:
  using Codec::Codec;
  std::vector<SumPart> parts(int r, std::uint64_t step) override;
  void encode_round(int r, std::span<const float> x, std::uint64_t step, int p) override;
  void finish(std::span<const float> x, std::uint64_t step, int p, std::span<float> out,
              std::span<float> sent) override;
};

// The codec of `config` (its kind) for `setup`.
std::unique_ptr<Codec> make_codec(const CodecConfig& config, const CodecSetup& setup);

}  // namespace dtsim
