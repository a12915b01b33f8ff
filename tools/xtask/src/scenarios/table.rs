//! The whole table, chapter after chapter in the order of the book, and choosing from it by
//! name; with the unit tests that hold for every entry.

use std::sync::LazyLock;

use super::scenario::Scenario;
use super::{benchmarks, boot, cpu, density, fuzz, hostile, library_os, memory, network, trace};

/// Every scenario, in the order `cargo xtask test` runs them. Built once, because a few
/// entries write counts from the constants their host functions use.
pub static SCENARIOS: LazyLock<Vec<Scenario>> = LazyLock::new(|| {
    [
        boot::SCENARIOS,
        memory::SCENARIOS,
        cpu::SCENARIOS,
        library_os::SCENARIOS,
        network::SCENARIOS,
        &network::scenarios(),
        hostile::SCENARIOS,
        fuzz::SCENARIOS,
        &benchmarks::scenarios(),
        density::SCENARIOS,
        trace::SCENARIOS,
    ]
    .concat()
});

/// The scenarios whose name contains `filter` (all of them without one), in table order.
pub fn matching(filter: Option<&str>) -> Vec<&'static Scenario> {
    SCENARIOS
        .iter()
        .filter(|scenario| filter.is_none_or(|filter| scenario.name.contains(filter)))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::{artifacts, servers};

    #[test]
    fn only_networked_scenarios_run_on_the_hosts_clock() {
        for scenario in SCENARIOS.iter() {
            let config = scenario.qemu_config(Path::new("/k/exo-kernel"));
            assert_eq!(config.instruction_clock, scenario.network.is_none());
            assert!(config.port_forwards.is_empty() && config.packet_capture.is_none());
        }
    }

    #[test]
    fn filter_selects_by_name_substring() {
        assert_eq!(matching(None).len(), SCENARIOS.len());
        let names: Vec<_> = matching(Some("fault")).iter().map(|s| s.name).collect();
        assert_eq!(names, ["page-fault", "double-fault", "fault-test"]);
        assert!(matching(Some("nothing-matches")).is_empty());
    }

    #[test]
    fn programs_exist_and_are_boot_modules() {
        let programs = artifacts::user_program_names();
        for scenario in SCENARIOS.iter() {
            let config = scenario.qemu_config(Path::new("/k/exo-kernel"));
            match scenario.program() {
                Some(program) => {
                    assert!(programs.iter().any(|name| name == program), "{program}");
                    let archive = match scenario.boots_run_layout() {
                        false => artifacts::bootfs(),
                        true => servers::bootfs(),
                    };
                    assert_eq!(config.boot_module, Some(archive));
                    assert_eq!(config.first_program.as_deref(), Some(program));
                }
                None => assert_eq!(config.boot_module, None),
            }
        }
    }

    #[test]
    fn scenario_names_are_unique() {
        for (index, scenario) in SCENARIOS.iter().enumerate() {
            assert!(
                SCENARIOS[..index]
                    .iter()
                    .all(|other| other.name != scenario.name)
            );
        }
    }
}
