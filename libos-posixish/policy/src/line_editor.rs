//! The shell's line editor: what each key typed on a terminal does to the
//! line being typed, and what to write back so the terminal shows it.
//!
//! It knows the keys of a VT100-style terminal (what QEMU passes on from
//! the host's): printable ASCII, Enter (CR, LF or CR LF), Backspace (BS or
//! DEL), Ctrl-U (erase to the start), Ctrl-W (erase the word before the
//! cursor), Ctrl-D (the end of input, on an empty line), and the escape
//! sequences of the arrows, Home, End and Delete. A sequence may arrive
//! split across reads; one it does not know is read to its end and
//! ignored, never shown. Up and Down walk the history of lines entered.
//!
//! It never reads or writes the console: the caller feeds it bytes and
//! writes what it returns. Ctrl-C is not a key here: the kernel keeps it out
//! of the console's input and counts it on the facts page.

use alloc::string::String;
use alloc::vec::Vec;

const BACKSPACE: u8 = 0x08;
const DELETE: u8 = 0x7f;
const END_OF_INPUT: u8 = 0x04;
const ERASE_LINE: u8 = 0x15;
const ERASE_WORD: u8 = 0x17;
const ESCAPE: u8 = 0x1b;
/// Lines the history keeps; the oldest go first.
pub const HISTORY_LENGTH: usize = 100;

/// What a key did.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Still editing.
    Editing,
    /// Enter: the line, now in the history if it has words.
    Line(String),
    /// Ctrl-D on an empty line.
    EndOfInput,
}

/// Where the editor is in an escape sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Escape {
    None,
    /// ESC seen.
    Started,
    /// ESC [ (CSI) or ESC O (SS3) seen, with the numeric parameter so far.
    Sequence {
        parameter: u32,
    },
}

/// One line being typed, and the lines typed before it.
#[derive(Debug)]
pub struct LineEditor {
    line: Vec<u8>,
    /// Where the next character goes: an index into `line`.
    cursor: usize,
    history: Vec<Vec<u8>>,
    /// Which history entry Up and Down show; `history.len()`: the new line,
    /// kept in `draft` while an older one is shown.
    shown: usize,
    draft: Vec<u8>,
    escape: Escape,
    /// The last byte was CR: an LF right after it ends no second line.
    after_carriage_return: bool,
}

impl Default for LineEditor {
    fn default() -> Self {
        Self::new()
    }
}

impl LineEditor {
    pub const fn new() -> Self {
        Self {
            line: Vec::new(),
            cursor: 0,
            history: Vec::new(),
            shown: 0,
            draft: Vec::new(),
            escape: Escape::None,
            after_carriage_return: false,
        }
    }

    /// The line as typed so far.
    pub fn line(&self) -> &[u8] {
        &self.line
    }

    /// Forgets the line being typed (Ctrl-C at the prompt).
    pub fn discard_line(&mut self) {
        self.line.clear();
        self.cursor = 0;
        self.shown = self.history.len();
        self.escape = Escape::None;
    }

    /// What redraws the line after `prompt`, wherever the terminal's cursor
    /// is on its row: back to its start, the prompt, the line, the rest of
    /// the row erased, the cursor put back where it was in the line.
    pub fn redraw(&self, prompt: &str, output: &mut Vec<u8>) {
        output.push(b'\r');
        output.extend_from_slice(prompt.as_bytes());
        output.extend_from_slice(&self.line);
        output.extend_from_slice(b"\x1b[K");
        cursor_left(self.line.len() - self.cursor, output);
    }

    /// Takes one byte typed after `prompt`; appends to `output` what the
    /// terminal must be sent to show its effect.
    pub fn key(&mut self, byte: u8, prompt: &str, output: &mut Vec<u8>) -> Outcome {
        let after_carriage_return = core::mem::replace(&mut self.after_carriage_return, false);
        match self.escape {
            Escape::Started => {
                self.escape = match byte {
                    b'[' | b'O' => Escape::Sequence { parameter: 0 },
                    _ => Escape::None,
                };
                return Outcome::Editing;
            }
            Escape::Sequence { parameter } => {
                self.escape = match byte {
                    b'0'..=b'9' => Escape::Sequence {
                        parameter: parameter
                            .saturating_mul(10)
                            .saturating_add(u32::from(byte - b'0')),
                    },
                    // Other parameter and intermediate bytes (ECMA-48): keep reading.
                    0x20..=0x3f => Escape::Sequence { parameter },
                    _ => {
                        self.sequence(byte, parameter, prompt, output);
                        Escape::None
                    }
                };
                return Outcome::Editing;
            }
            Escape::None => {}
        }
        match byte {
            b'\n' if after_carriage_return => {}
            b'\r' | b'\n' => {
                self.after_carriage_return = byte == b'\r';
                return self.enter(output);
            }
            END_OF_INPUT if self.line.is_empty() => return Outcome::EndOfInput,
            ESCAPE => self.escape = Escape::Started,
            BACKSPACE | DELETE if self.cursor > 0 => {
                self.cursor -= 1;
                self.line.remove(self.cursor);
                if self.cursor == self.line.len() {
                    output.extend_from_slice(b"\x08 \x08");
                } else {
                    self.redraw(prompt, output);
                }
            }
            ERASE_LINE => {
                self.line.drain(..self.cursor);
                self.cursor = 0;
                self.redraw(prompt, output);
            }
            ERASE_WORD => {
                let end = self.cursor;
                while self.cursor > 0 && self.line[self.cursor - 1] == b' ' {
                    self.cursor -= 1;
                }
                while self.cursor > 0 && self.line[self.cursor - 1] != b' ' {
                    self.cursor -= 1;
                }
                self.line.drain(self.cursor..end);
                self.redraw(prompt, output);
            }
            byte if byte.is_ascii_graphic() || byte == b' ' => {
                self.line.insert(self.cursor, byte);
                self.cursor += 1;
                if self.cursor == self.line.len() {
                    output.push(byte);
                } else {
                    self.redraw(prompt, output);
                }
            }
            _ => {}
        }
        Outcome::Editing
    }

    /// The end of an escape sequence: `last` its final byte.
    fn sequence(&mut self, last: u8, parameter: u32, prompt: &str, output: &mut Vec<u8>) {
        match (last, parameter) {
            (b'A', _) => self.show_history(self.shown.checked_sub(1), prompt, output),
            (b'B', _) => self.show_history(Some(self.shown + 1), prompt, output),
            (b'C', _) if self.cursor < self.line.len() => {
                self.cursor += 1;
                output.extend_from_slice(b"\x1b[C");
            }
            (b'D', _) if self.cursor > 0 => {
                self.cursor -= 1;
                output.extend_from_slice(b"\x1b[D");
            }
            (b'H', _) | (b'~', 1 | 7) => {
                cursor_left(self.cursor, output);
                self.cursor = 0;
            }
            (b'F', _) | (b'~', 4 | 8) => {
                output.extend_from_slice(&self.line[self.cursor..]);
                self.cursor = self.line.len();
            }
            (b'~', 3) if self.cursor < self.line.len() => {
                self.line.remove(self.cursor);
                self.redraw(prompt, output);
            }
            _ => {}
        }
    }

    /// Shows history entry `index` (`history.len()`: the line being typed
    /// before Up was pressed); nothing if there is no such entry.
    fn show_history(&mut self, index: Option<usize>, prompt: &str, output: &mut Vec<u8>) {
        let Some(index) = index.filter(|&index| index <= self.history.len()) else {
            return;
        };
        if self.shown == self.history.len() {
            self.draft = self.line.clone();
        }
        self.shown = index;
        self.line = match self.history.get(index) {
            Some(entry) => entry.clone(),
            None => self.draft.clone(),
        };
        self.cursor = self.line.len();
        self.redraw(prompt, output);
    }

    fn enter(&mut self, output: &mut Vec<u8>) -> Outcome {
        output.push(b'\n');
        let line = core::mem::take(&mut self.line);
        self.cursor = 0;
        let has_words = line.iter().any(|byte| *byte != b' ');
        if has_words && self.history.last() != Some(&line) {
            if self.history.len() == HISTORY_LENGTH {
                self.history.remove(0);
            }
            self.history.push(line.clone());
        }
        self.shown = self.history.len();
        // Only ASCII is ever put in the line.
        Outcome::Line(line.iter().map(|&byte| char::from(byte)).collect())
    }
}

/// Moves the terminal's cursor `columns` to the left.
fn cursor_left(columns: usize, output: &mut Vec<u8>) {
    if columns > 0 {
        output.extend_from_slice(alloc::format!("\x1b[{columns}D").as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROMPT: &str = "/ $ ";

    /// Types `keys`; returns the lines entered and what was shown.
    fn type_keys(editor: &mut LineEditor, keys: &[u8]) -> (Vec<String>, Vec<u8>) {
        let mut lines = Vec::new();
        let mut output = Vec::new();
        for &byte in keys {
            if let Outcome::Line(line) = editor.key(byte, PROMPT, &mut output) {
                lines.push(line);
            }
        }
        (lines, output)
    }

    fn lines(keys: &[u8]) -> Vec<String> {
        type_keys(&mut LineEditor::new(), keys).0
    }

    #[test]
    fn plain_typing_echoes_each_character_and_enter_ends_the_line() {
        let (lines, output) = type_keys(&mut LineEditor::new(), b"ls /\r");
        assert_eq!(lines, ["ls /"]);
        assert_eq!(output, b"ls /\n");
    }

    #[test]
    fn cr_lf_is_one_line_and_lf_alone_is_one_too() {
        assert_eq!(lines(b"a\r\nb\nc\r"), ["a", "b", "c"]);
        assert_eq!(lines(b"\r\n\r\n"), ["", ""]);
    }

    #[test]
    fn backspace_works_across_the_line_and_not_before_it() {
        assert_eq!(lines(b"ab\x7f\x7f\x7fcd\x08e\r"), ["ce"]);
        assert_eq!(lines(b"abc\x1b[D\x1b[D\x7f\r"), ["bc"]);
    }

    #[test]
    fn left_right_home_and_end_move_where_typing_goes() {
        assert_eq!(lines(b"ac\x1b[Db\r"), ["abc"]);
        assert_eq!(lines(b"bc\x1b[Ha\x1b[Fd\r"), ["abcd"]);
        assert_eq!(lines(b"bc\x1b[1~a\x1b[4~d\r"), ["abcd"]);
        assert_eq!(lines(b"ab\x1b[C\x1b[Cc\r"), ["abc"]);
        assert_eq!(lines(b"abc\x1b[D\x1b[D\x1b[3~\r"), ["ac"]);
    }

    #[test]
    fn ctrl_u_erases_to_the_start_and_ctrl_w_the_word_before() {
        assert_eq!(lines(b"rm -rf /\x15echo safe\r"), ["echo safe"]);
        assert_eq!(lines(b"cat /tmp/f  \x17/etc/rc\r"), ["cat /etc/rc"]);
        assert_eq!(lines(b"one two\x1b[D\x1b[D\x1b[D\x17\r"), ["two"]);
    }

    #[test]
    fn up_and_down_walk_the_history_and_come_back_to_the_draft() {
        let mut editor = LineEditor::new();
        type_keys(&mut editor, b"first\rsecond\r\r");
        let (lines, _) = type_keys(&mut editor, b"dra\x1b[A\x1b[A\x1b[A\r");
        assert_eq!(lines, ["first"]);
        let (lines, _) = type_keys(&mut editor, b"dra\x1b[A\x1b[B\x1b[Bft\r");
        assert_eq!(lines, ["draft"]);
        // Blank lines and repeats of the last entry are not kept.
        type_keys(&mut editor, b"draft\r");
        assert_eq!(
            editor.history,
            [&b"first"[..], b"second", b"first", b"draft"]
        );
    }

    #[test]
    fn an_up_arrow_split_across_reads_still_counts() {
        let mut editor = LineEditor::new();
        type_keys(&mut editor, b"ls\r");
        type_keys(&mut editor, b"\x1b");
        type_keys(&mut editor, b"[");
        let (lines, _) = type_keys(&mut editor, b"A\r");
        assert_eq!(lines, ["ls"]);
    }

    #[test]
    fn unknown_sequences_and_control_bytes_are_not_shown() {
        let (lines, output) = type_keys(
            &mut LineEditor::new(),
            b"a\x1b[15~\x1b[1;5C\x1bOP\x01\x02b\r",
        );
        assert_eq!(lines, ["ab"]);
        assert_eq!(output, b"ab\n");
    }

    #[test]
    fn ctrl_d_ends_input_only_on_an_empty_line() {
        let mut editor = LineEditor::new();
        let mut output = Vec::new();
        assert_eq!(editor.key(b'x', PROMPT, &mut output), Outcome::Editing);
        assert_eq!(
            editor.key(END_OF_INPUT, PROMPT, &mut output),
            Outcome::Editing
        );
        editor.discard_line();
        assert_eq!(
            editor.key(END_OF_INPUT, PROMPT, &mut output),
            Outcome::EndOfInput
        );
    }

    #[test]
    fn a_redraw_puts_the_cursor_back_where_it_was() {
        let mut editor = LineEditor::new();
        type_keys(&mut editor, b"abcd\x1b[D\x1b[D");
        let mut output = Vec::new();
        editor.redraw(PROMPT, &mut output);
        assert_eq!(output, b"\r/ $ abcd\x1b[K\x1b[2D");
    }

    #[test]
    fn the_history_keeps_only_the_newest_lines() {
        let mut editor = LineEditor::new();
        for index in 0..HISTORY_LENGTH + 5 {
            type_keys(&mut editor, alloc::format!("echo {index}\r").as_bytes());
        }
        assert_eq!(editor.history.len(), HISTORY_LENGTH);
        assert_eq!(editor.history[0], b"echo 5");
    }
}
