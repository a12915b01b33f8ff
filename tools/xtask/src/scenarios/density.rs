//! Density (docs/07): many small apps, each in its own environment, started by one
//! program and answering on the network at once.

use super::scenario::{DEFAULT, NetworkScenario, Program, SERVER_TIMEOUT, Scenario};
use crate::density;

pub const SCENARIOS: &[Scenario] = &[Scenario {
    name: "density",
    kernel_command_line: density::SCENARIO_COMMAND_LINE,
    program: Program::Named(density::PROGRAM),
    serial_must_show: &["density: started the 8 apps asked for", density::READY],
    timeout: SERVER_TIMEOUT,
    network: Some(NetworkScenario {
        udp_ports: &density::SCENARIO_PORTS,
        host: Some(density::scenario_apps_answer),
        ..NetworkScenario::DEFAULT
    }),
    ..DEFAULT
}];
