// Internal to scenario loading: a reader per section of the file, the [sweep] reader, --set
// overrides, and the cross-checks, each recording its errors in the TomlReader.
#pragma once

#include <string>
#include <vector>

#include "sim/scenario/scenario.hpp"
#include "sim/scenario/toml_reader.hpp"

namespace dtsim {

void read_model(TomlReader& r, const toml::table& t, ModelConfig& m);
void read_data(TomlReader& r, const toml::table& t, DataConfig& d);
void read_train(TomlReader& r, const toml::table& t, TrainConfig& c);
void read_cluster(TomlReader& r, const toml::table& t, ClusterConfig& c);
void read_network(TomlReader& r, const toml::table& t, NetworkConfig& n);
void read_strategy(TomlReader& r, const toml::table& t, StrategyConfig& s);
void read_compression(TomlReader& r, const toml::table& t, CodecConfig& c);
void read_faults(TomlReader& r, const toml::node& node, std::vector<FaultConfig>& out);
void read_expect(TomlReader& r, const toml::table& t, std::vector<Expectation>& out);
void read_sweep(TomlReader& r, const toml::table& t, std::vector<SweepAxis>& out);

// Applies --set overrides to the parsed document, recording bad ones as errors.
void apply_overrides(TomlReader& r, toml::table& root, const std::vector<std::string>& overrides);

// Every combination that cannot work is an error now, not a surprise mid-run; fills the
// defaults that depend on other keys (data.path, one epoch).
void check_scenario(TomlReader& r, const toml::table& root, Scenario& s);

}  // namespace dtsim
