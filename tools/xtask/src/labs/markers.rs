//! The lab markers in the source: where a lab takes the solution out of the tree and what
//! it leaves in its place.
//!
//! A region is written in comments only, so the tree builds and behaves exactly as without
//! it:
//!
//! ```text
//! // LAB 4.2 BEGIN: resolve a copy-on-write fault
//! ...the solution...
//! // LAB 4.2 STUB
//! // todo!("lab 4.2: resolve a copy-on-write fault")
//! // LAB 4.2 END
//! ```
//!
//! [`stub`] turns a file into its skeleton for one lab: the solution lines go, the stub
//! lines lose their `// ` and stay, the three marker lines stay as they are (a student
//! sees where the exercise is). Regions neither nest nor interleave, and every stub line
//! is a comment: anything else is an error naming the line, never a guess.

use std::fmt;

/// Exercise `number` of lab `lab`, written `lab.number` (`4.2`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ExerciseId {
    pub lab: u32,
    pub number: u32,
}

impl fmt::Display for ExerciseId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}.{}", self.lab, self.number)
    }
}

impl ExerciseId {
    /// Reads `4.2`; `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        let (lab, number) = text.split_once('.')?;
        let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
        if !digits(lab) || !digits(number) {
            return None;
        }
        Some(ExerciseId {
            lab: lab.parse().ok()?,
            number: number.parse().ok()?,
        })
    }
}

/// One marked region; lines are counted from 1, as editors do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Region {
    pub exercise: ExerciseId,
    /// What the `BEGIN` line says after its colon.
    pub title: String,
    pub begin_line: usize,
    pub stub_line: usize,
    pub end_line: usize,
}

/// A marker that breaks the rules, at `line` (from 1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MarkerError {
    pub line: usize,
    pub message: String,
}

/// What a marker line says.
#[derive(Debug, PartialEq, Eq)]
enum Marker<'a> {
    Begin(ExerciseId, &'a str),
    Stub(ExerciseId),
    End(ExerciseId),
}

/// Where the parser is inside a region.
enum State {
    Outside,
    Solution(Region),
    Stub(Region),
}

/// The words every marker starts with, after the line's indentation.
const MARKER_PREFIX: &str = "// LAB ";

/// Reads a marker line; `Ok(None)` for any other line, `Err` for a line that starts like a
/// marker but is not one (a typo must not silently leave a solution in a skeleton).
fn marker(line: &str) -> Result<Option<Marker<'_>>, String> {
    let Some(rest) = line.trim_start().strip_prefix(MARKER_PREFIX) else {
        return Ok(None);
    };
    let bad = || format!("not a lab marker (`// LAB N.M BEGIN: title`, `STUB` or `END`): {line:?}");
    let (id, rest) = rest.split_once(' ').ok_or_else(bad)?;
    let id = ExerciseId::parse(id).ok_or_else(bad)?;
    match rest.trim_end() {
        "STUB" => Ok(Some(Marker::Stub(id))),
        "END" => Ok(Some(Marker::End(id))),
        rest => match rest.strip_prefix("BEGIN: ") {
            Some(title) if !title.trim().is_empty() => Ok(Some(Marker::Begin(id, title.trim()))),
            _ => Err(bad()),
        },
    }
}

/// The regions of `text`, in order.
pub fn parse(text: &str) -> Result<Vec<Region>, MarkerError> {
    let mut regions = Vec::new();
    let mut state = State::Outside;
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let error = |message: String| MarkerError {
            line: number,
            message,
        };
        let marker = marker(line).map_err(error)?;
        state = match (state, marker) {
            (State::Outside, None) => State::Outside,
            (State::Outside, Some(Marker::Begin(exercise, title))) => State::Solution(Region {
                exercise,
                title: title.to_string(),
                begin_line: number,
                stub_line: 0,
                end_line: 0,
            }),
            (State::Solution(region), None) => State::Solution(region),
            (State::Solution(mut region), Some(Marker::Stub(id))) if id == region.exercise => {
                region.stub_line = number;
                State::Stub(region)
            }
            (State::Stub(region), None) => {
                if !line.trim_start().starts_with("//") {
                    return Err(error(format!(
                        "lab {}'s stub lines must be comments: {line:?}",
                        region.exercise
                    )));
                }
                State::Stub(region)
            }
            (State::Stub(mut region), Some(Marker::End(id))) if id == region.exercise => {
                region.end_line = number;
                regions.push(region);
                State::Outside
            }
            (State::Outside, Some(other)) => {
                return Err(error(format!(
                    "{other:?} outside a region (no BEGIN before it)"
                )));
            }
            (State::Solution(region), Some(other)) => {
                return Err(error(format!(
                    "{other:?} inside lab {}'s solution (begun on line {}): expected `// LAB {} STUB`",
                    region.exercise, region.begin_line, region.exercise
                )));
            }
            (State::Stub(region), Some(other)) => {
                return Err(error(format!(
                    "{other:?} inside lab {}'s stub (begun on line {}): expected `// LAB {} END`",
                    region.exercise, region.begin_line, region.exercise
                )));
            }
        };
    }
    match state {
        State::Outside => Ok(regions),
        State::Solution(region) | State::Stub(region) => Err(MarkerError {
            line: region.begin_line,
            message: format!("lab {}'s region has no END", region.exercise),
        }),
    }
}

/// `text` with the regions of lab `lab` replaced by their stubs; other labs' regions keep
/// their solutions. Line endings are kept.
pub fn stub(text: &str, regions: &[Region], lab: u32) -> String {
    let chosen: Vec<&Region> = regions
        .iter()
        .filter(|region| region.exercise.lab == lab)
        .collect();
    let mut out = String::with_capacity(text.len());
    for (index, line) in text.split_inclusive('\n').enumerate() {
        let number = index + 1;
        let region = chosen
            .iter()
            .find(|region| (region.begin_line..=region.end_line).contains(&number));
        match region {
            None => out.push_str(line),
            Some(region) if number == region.begin_line || number >= region.stub_line => {
                let is_marker = number == region.begin_line
                    || number == region.stub_line
                    || number == region.end_line;
                if is_marker {
                    out.push_str(line);
                } else {
                    out.push_str(&uncomment(line));
                }
            }
            Some(_) => {} // A solution line: it goes.
        }
    }
    out
}

/// The line without its comment's `//` and the one space after it, indentation kept.
fn uncomment(line: &str) -> String {
    let indentation = line.len() - line.trim_start().len();
    let (indent, rest) = line.split_at(indentation);
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let rest = rest.strip_prefix(' ').unwrap_or(rest);
    format!("{indent}{rest}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Marked text, written with `#LAB` for `// LAB` so that the tree's own scan (which
    /// reads this file too) does not take these lines for real regions.
    fn marked(text: &str) -> String {
        text.replace("#LAB", "// LAB")
    }

    const SOURCE: &str = "\
fn before() {}
    #LAB 4.2 BEGIN: resolve a fault
    let page = resolve(fault);
    page.map();
    #LAB 4.2 STUB
    // todo!(\"lab 4.2: resolve a fault\")
    //
    #LAB 4.2 END
#LAB 5.1 BEGIN: pick a thread
pick()
#LAB 5.1 STUB
// None
#LAB 5.1 END
fn after() {}
";

    #[test]
    fn regions_are_found_with_their_lines() {
        let source = marked(SOURCE);
        let regions = parse(&source).unwrap();
        assert_eq!(regions.len(), 2);
        assert_eq!(
            regions[0],
            Region {
                exercise: ExerciseId { lab: 4, number: 2 },
                title: "resolve a fault".to_string(),
                begin_line: 2,
                stub_line: 5,
                end_line: 8,
            }
        );
        assert_eq!(regions[1].exercise, ExerciseId { lab: 5, number: 1 });
    }

    #[test]
    fn stubbing_one_lab_uncomments_its_stub_and_leaves_the_others() {
        let source = marked(SOURCE);
        let regions = parse(&source).unwrap();
        let expected = &marked(
            "\
fn before() {}
    #LAB 4.2 BEGIN: resolve a fault
    #LAB 4.2 STUB
    todo!(\"lab 4.2: resolve a fault\")
    
    #LAB 4.2 END
#LAB 5.1 BEGIN: pick a thread
pick()
#LAB 5.1 STUB
// None
#LAB 5.1 END
fn after() {}
",
        );
        assert_eq!(stub(&source, &regions, 4), *expected);
        assert_eq!(stub(&source, &regions, 6), source);
        // A skeleton is no tree to make labs from: its stub is code now.
        assert_eq!(parse(expected).unwrap_err().line, 4);
    }

    #[test]
    fn exercise_ids_are_two_numbers() {
        assert_eq!(
            ExerciseId::parse("10.3"),
            Some(ExerciseId { lab: 10, number: 3 })
        );
        for bad in ["4", "4.", ".2", "4.2.1", "a.b", "-4.2", "4 .2"] {
            assert_eq!(ExerciseId::parse(bad), None, "{bad}");
        }
    }

    #[track_caller]
    fn error_line(text: &str) -> usize {
        parse(text).unwrap_err().line
    }

    #[test]
    fn unbalanced_nested_and_misspelt_markers_are_errors_at_their_line() {
        // No END.
        assert_eq!(
            error_line("a\n// LAB 1.1 BEGIN: x\nb\n// LAB 1.1 STUB\n"),
            2
        );
        // No STUB before END.
        assert_eq!(error_line("// LAB 1.1 BEGIN: x\nb\n// LAB 1.1 END\n"), 3);
        // Nested.
        assert_eq!(
            error_line("// LAB 1.1 BEGIN: x\n// LAB 1.2 BEGIN: y\n// LAB 1.2 STUB\n"),
            2
        );
        // Another exercise's END.
        assert_eq!(
            error_line("// LAB 1.1 BEGIN: x\n// LAB 1.1 STUB\n// LAB 1.2 END\n"),
            3
        );
        // END or STUB with no BEGIN.
        assert_eq!(error_line("x\n// LAB 1.1 END\n"), 2);
        assert_eq!(error_line("// LAB 1.1 STUB\n"), 1);
        // Misspelt or untitled.
        assert_eq!(error_line("x\n  // LAB 1.1 BEGIN x\n"), 2);
        assert_eq!(error_line("// LAB 1.1 BEGIN: \n"), 1);
        assert_eq!(error_line("// LAB one BEGIN: x\n"), 1);
        assert_eq!(error_line("// LAB 1.1 FINISH\n"), 1);
        // A stub line that is code would be compiled into the tree.
        assert_eq!(
            error_line("// LAB 1.1 BEGIN: x\n// LAB 1.1 STUB\ntodo!()\n// LAB 1.1 END\n"),
            3
        );
    }

    #[test]
    fn text_without_markers_has_no_regions_and_is_unchanged() {
        let text = "// a comment about the LAB\nfn main() {}\n";
        assert!(parse(text).unwrap().is_empty());
        assert_eq!(stub(text, &[], 1), text);
    }
}
