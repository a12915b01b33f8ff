//! Every lab: its chapter, its exercises, what each is worth and the checks that judge it.
//!
//! Data, like the scenario table: an exercise names host unit tests (by their full path)
//! and scenarios of the table (by name), never a check of its own kind. A check that
//! passes on the tree must fail once the exercise's region is stubbed; `cargo xtask test`
//! proves both for every lab (see `rot.rs`).

/// One lab: a chapter of `docs/labs/` and the exercises its markers take out of the tree.
#[derive(Debug)]
pub struct Lab {
    pub number: u32,
    pub title: &'static str,
    /// Relative to the workspace root.
    pub chapter: &'static str,
    pub exercises: &'static [Exercise],
}

/// An exercise: the code between `// LAB lab.number BEGIN` and its `END`, wherever it is.
#[derive(Debug)]
pub struct Exercise {
    pub number: u32,
    pub title: &'static str,
    pub points: u32,
    /// All must pass for the points; any failure scores zero and says why.
    pub checks: &'static [Check],
}

/// What judges an exercise.
#[derive(Debug)]
pub enum Check {
    /// Unit tests of a host crate, each named by its full path (`caps::tests::name`); every
    /// one must run and pass.
    HostTests {
        package: &'static str,
        tests: &'static [&'static str],
    },
    /// A scenario of `cargo xtask test`'s table, judged as there: exit, check count,
    /// serial lines.
    Scenario(&'static str),
    /// Lines a scenario's serial output must show in order: for an exercise that only part
    /// of a self-judging program covers (its own `ok:` lines).
    ScenarioShows {
        scenario: &'static str,
        lines: &'static [&'static str],
    },
}

impl Check {
    /// The scenario the check boots, if it boots one.
    pub fn scenario(&self) -> Option<&'static str> {
        match self {
            Check::HostTests { .. } => None,
            Check::Scenario(name) | Check::ScenarioShows { scenario: name, .. } => Some(name),
        }
    }
}

/// The capability space's tests in kernel-core.
const CAPS: &str = "exo-kernel-core";
/// The library OS's policies, where the thread schedulers live.
const POLICY: &str = "posixish-policy";

pub const LABS: &[Lab] = &[
    Lab {
        number: 1,
        title: "boot and a system call",
        chapter: "docs/labs/1-system-call.md",
        exercises: &[
            Exercise {
                number: 1,
                title: "the kernel answers KernelMemory",
                points: 20,
                checks: &[Check::ScenarioShows {
                    scenario: "kernel-memory-test",
                    lines: &[
                        "ok: the raw call KernelMemory succeeds",
                        "ok: the kernel heap is in use and smaller than its capacity",
                    ],
                }],
            },
            Exercise {
                number: 2,
                title: "the user-side wrapper user::kernel_memory",
                points: 20,
                checks: &[Check::Scenario("kernel-memory-test")],
            },
        ],
    },
    Lab {
        number: 2,
        title: "capabilities",
        chapter: "docs/labs/2-capabilities.md",
        exercises: &[
            Exercise {
                number: 1,
                title: "derive: a child with fewer rights",
                points: 10,
                checks: &[Check::HostTests {
                    package: CAPS,
                    tests: &["caps::tests::derive_takes_a_subset_of_rights"],
                }],
            },
            Exercise {
                number: 2,
                title: "grant: a child in another table",
                points: 10,
                checks: &[Check::HostTests {
                    package: CAPS,
                    tests: &[
                        "caps::tests::grant_needs_the_grant_right",
                        "caps::tests::grant_puts_a_child_in_the_other_table",
                    ],
                }],
            },
            Exercise {
                number: 3,
                title: "revoke: every descendant, children first",
                points: 10,
                checks: &[Check::HostTests {
                    package: CAPS,
                    tests: &[
                        "caps::tests::revoke_removes_exactly_the_descendants_children_first",
                        "caps::tests::revoke_needs_the_revoke_right",
                        "caps::tests::revoke_in_shares_removes_what_one_revoke_removes_in_the_same_order",
                    ],
                }],
            },
            Exercise {
                number: 4,
                title: "remove a subtree without recursion, in the kernel too",
                points: 20,
                checks: &[
                    Check::HostTests {
                        package: CAPS,
                        tests: &[
                            "caps::tests::a_deep_chain_is_removed_without_recursion",
                            "caps::tests::drop_removes_the_capability_and_its_subtree",
                            "caps::tests::drop_in_shares_keeps_the_capability_until_the_end",
                            "caps::tests::destroy_table_takes_descendants_elsewhere_and_leaves_ancestors",
                            "caps::tests::random_operations_agree_with_a_naive_model",
                        ],
                    },
                    Check::Scenario("memory-test"),
                ],
            },
        ],
    },
    Lab {
        number: 3,
        title: "user-level faults and a pager",
        chapter: "docs/labs/3-pager.md",
        exercises: &[
            Exercise {
                number: 1,
                title: "demand-zero heap, stack and mmap pages",
                points: 20,
                checks: &[Check::Scenario("mmap-test")],
            },
            Exercise {
                number: 2,
                title: "answer a revocation request with clean pages",
                points: 20,
                checks: &[Check::Scenario("revoke-test")],
            },
        ],
    },
    Lab {
        number: 4,
        title: "copy-on-write fork in the library OS",
        chapter: "docs/labs/4-fork.md",
        exercises: &[
            Exercise {
                number: 1,
                title: "share the parent's memory copy-on-write",
                points: 20,
                checks: &[Check::Scenario("cow-test")],
            },
            Exercise {
                number: 2,
                title: "resolve a copy-on-write fault",
                points: 20,
                checks: &[Check::Scenario("forktree"), Check::Scenario("cow-test")],
            },
        ],
    },
    Lab {
        number: 5,
        title: "a thread scheduler policy",
        chapter: "docs/labs/5-scheduler.md",
        exercises: &[
            Exercise {
                number: 1,
                title: "priority: highest level first, round robin within it",
                points: 15,
                checks: &[
                    Check::HostTests {
                        package: POLICY,
                        tests: &[
                            "scheduler::tests::priority_runs_higher_first_and_takes_turns_within_a_level",
                            "scheduler::tests::an_empty_level_is_forgotten",
                        ],
                    },
                    Check::Scenario("threads-priority"),
                ],
            },
            Exercise {
                number: 2,
                title: "lottery: shares in proportion to tickets",
                points: 25,
                checks: &[
                    Check::HostTests {
                        package: POLICY,
                        tests: &[
                            "scheduler::tests::lottery_shares_follow_tickets",
                            "scheduler::tests::lottery_gives_a_ticketless_thread_one_ticket_and_empties",
                        ],
                    },
                    Check::Scenario("custom-scheduler"),
                ],
            },
        ],
    },
    Lab {
        number: 6,
        title: "UDP straight on the rings",
        chapter: "docs/labs/6-rings.md",
        exercises: &[
            Exercise {
                number: 1,
                title: "answer ARP, and take only whole datagrams to our port",
                points: 20,
                checks: &[Check::Scenario("trace-rings")],
            },
            Exercise {
                number: 2,
                title: "reflect a datagram: swap its addresses and ports",
                points: 20,
                checks: &[Check::Scenario("trace-rings")],
            },
        ],
    },
];

/// Lab `number`, or an error listing the labs there are.
pub fn lab(number: u32) -> Result<&'static Lab, String> {
    LABS.iter().find(|lab| lab.number == number).ok_or_else(|| {
        let numbers: Vec<String> = LABS.iter().map(|lab| lab.number.to_string()).collect();
        format!(
            "there is no lab {number}; the labs are {}",
            numbers.join(", ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labs::markers::ExerciseId;
    use crate::labs::tree;
    use crate::scenarios::SCENARIOS;
    use crate::workspace;

    #[test]
    fn labs_and_exercises_are_numbered_in_order_from_one() {
        for (index, lab) in LABS.iter().enumerate() {
            assert_eq!(lab.number as usize, index + 1);
            assert!(!lab.exercises.is_empty());
            for (index, exercise) in lab.exercises.iter().enumerate() {
                assert_eq!(exercise.number as usize, index + 1, "lab {}", lab.number);
                assert!(exercise.points > 0 && !exercise.checks.is_empty());
            }
        }
    }

    #[test]
    fn every_lab_has_its_chapter_and_a_scenario() {
        for lab in LABS {
            assert!(
                workspace::root().join(lab.chapter).is_file(),
                "{}",
                lab.chapter
            );
            let checks = lab.exercises.iter().flat_map(|exercise| exercise.checks);
            assert!(checks.clone().any(|check| check.scenario().is_some()));
            for name in checks.filter_map(Check::scenario) {
                assert!(SCENARIOS.iter().any(|s| s.name == name), "{name}");
            }
        }
    }

    /// Every exercise has at least one region in the tree, and every region belongs to an
    /// exercise: a marker with no grader, or a grader with nothing to take out, is a bug.
    #[test]
    fn regions_and_exercises_match() {
        if tree::is_lab_copy(&workspace::root()) {
            return; // A student's work is in the regions.
        }
        let regions = tree::regions(&workspace::root()).unwrap();
        for lab in LABS {
            for exercise in lab.exercises {
                let id = ExerciseId {
                    lab: lab.number,
                    number: exercise.number,
                };
                assert!(
                    regions.iter().any(|(_, region)| region.exercise == id),
                    "exercise {id} has no region"
                );
            }
        }
        for (file, region) in &regions {
            let known = lab(region.exercise.lab).is_ok_and(|lab| {
                lab.exercises
                    .iter()
                    .any(|exercise| exercise.number == region.exercise.number)
            });
            assert!(
                known,
                "{}:{}: no exercise {}",
                file.display(),
                region.begin_line,
                region.exercise
            );
        }
    }
}
