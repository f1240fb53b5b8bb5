// The `preflight` command. Subcommands register themselves (cli/commands.hpp); this
// file owns only parsing and the one-line error contract.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <exception>
#include <new>

#include "cli/commands.hpp"
#include "reference/core/error.hpp"

int main(int argc, char** argv) {
  CLI::App app{"preflight: validate a frontier-scale MoE training run before it spends a GPU-hour"};
  app.require_subcommand(1);
  app.set_help_all_flag("--help-all", "Help for every subcommand");
  app.set_version_flag("--version", preflight::cli::version_line(), "Print the version and exit");
  preflight::cli::register_model(app);
  preflight::cli::register_version(app);
  preflight::cli::register_sim(app);
  preflight::cli::register_plan(app);
  preflight::cli::register_faults(app);
  preflight::cli::register_check(app);
  preflight::cli::register_parity(app);
  preflight::cli::register_train(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ValidationError& e) {
    // A flag's value is out of its range or not a number: bad input, like a bad field.
    std::fprintf(stderr, "preflight: error: %s\n", e.what());
    return 1;
  } catch (const CLI::ConversionError& e) {
    std::fprintf(stderr, "preflight: error: %s\n", e.what());
    return 1;
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "preflight: error: %s (see --help)\n", e.what());
    return 2;
  } catch (const preflight::Error& e) {
    std::fprintf(stderr, "preflight: error: %s\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "preflight: error: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "preflight: internal error: %s\n", e.what());
    return 3;
  }
  return 0;
}
