//! Reading a topology file: `${ENV}` substitution and mapping a key path back to a
//! `line:column`, so every error points at the place in the file a person has to edit.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// A 1-based position in the topology file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

/// A failed `${NAME}` substitution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubstitutionError {
    /// Where the reference starts.
    pub position: Position,
    /// What is wrong.
    pub message: String,
}

/// Replaces `${NAME}` and `${NAME:-default}` with environment values; `$$` is a literal `$`.
/// Substitution happens line by line, so line numbers of later errors stay right.
pub fn substitute_env(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, Vec<SubstitutionError>> {
    let mut out = String::with_capacity(text.len());
    let mut errors = Vec::new();
    for (line_idx, line) in text.split_inclusive('\n').enumerate() {
        // Comments are left alone: a `${X}` in a comment is documentation, not a reference.
        let mut rest = line;
        let mut column = 1;
        while let Some(dollar) = rest.find('$') {
            out.push_str(&rest[..dollar]);
            column += rest[..dollar].chars().count();
            let after = &rest[dollar + 1..];
            if let Some(tail) = after.strip_prefix('$') {
                out.push('$');
                rest = tail;
                column += 2;
            } else if let Some(body) = after.strip_prefix('{') {
                let Some(end) = body.find('}') else {
                    errors.push(SubstitutionError {
                        position: Position {
                            line: line_idx + 1,
                            column,
                        },
                        message: "unterminated `${`".to_string(),
                    });
                    out.push_str(&rest[dollar..]);
                    rest = "";
                    break;
                };
                let inner = &body[..end];
                let (name, default) = match inner.split_once(":-") {
                    Some((n, d)) => (n, Some(d)),
                    None => (inner, None),
                };
                let valid_name = !name.is_empty()
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    && !name.starts_with(|c: char| c.is_ascii_digit());
                if !valid_name {
                    errors.push(SubstitutionError {
                        position: Position {
                            line: line_idx + 1,
                            column,
                        },
                        message: format!("`${{{inner}}}` is not a valid variable reference"),
                    });
                } else {
                    match (lookup(name), default) {
                        (Some(v), _) => out.push_str(&v),
                        (None, Some(d)) => out.push_str(d),
                        (None, None) => errors.push(SubstitutionError {
                            position: Position { line: line_idx + 1, column },
                            message: format!(
                                "environment variable `{name}` is not set (use `${{{name}:-default}}` for a default)"
                            ),
                        }),
                    }
                }
                column += inner.chars().count() + 3;
                rest = &body[end + 1..];
            } else {
                out.push('$');
                rest = after;
                column += 1;
            }
        }
        out.push_str(rest);
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// One step of a key path: a mapping key or a sequence index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathStep {
    /// `key`
    Key(String),
    /// `[index]`
    Index(usize),
}

/// Renders a path the way errors show it: `stages[1].input`.
pub fn render_path(path: &[PathStep]) -> String {
    let mut s = String::new();
    for step in path {
        match step {
            PathStep::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            PathStep::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

/// Positions of every node of a YAML document, by rendered key path. For a mapping entry the
/// position is that of its key, which is where an editor should put the cursor.
#[derive(Debug, Default)]
pub struct PositionIndex {
    positions: HashMap<String, Position>,
}

impl PositionIndex {
    /// Indexes `text`. A document that does not parse yields an empty index (the parse error
    /// itself carries a position).
    pub fn build(text: &str) -> Self {
        let mut collector = Collector::default();
        let mut parser = Parser::new_from_str(text);
        if parser.load(&mut collector, false).is_err() {
            return Self::default();
        }
        Self {
            positions: collector.positions,
        }
    }

    /// The position of `path`, or of its closest existing ancestor (a missing key is reported
    /// where its parent mapping is).
    pub fn locate(&self, path: &[PathStep]) -> Option<Position> {
        (0..=path.len())
            .rev()
            .find_map(|n| self.positions.get(&render_path(&path[..n])).copied())
    }
}

#[derive(Default)]
struct Collector {
    positions: HashMap<String, Position>,
    /// Open containers: for a mapping, whether the next scalar/container is a key, and the
    /// current key; for a sequence, the next index.
    stack: Vec<Frame>,
    path: Vec<PathStep>,
}

enum Frame {
    Map { expecting_key: bool },
    Seq { next: usize },
}

impl Collector {
    fn pos(m: Marker) -> Position {
        Position {
            line: m.line(),
            column: m.col() + 1,
        }
    }

    /// Called for every node start (scalar or container); returns true if it was a map key.
    fn enter_node(&mut self, mark: Marker, is_scalar_key_candidate: Option<&str>) -> bool {
        match self.stack.last_mut() {
            Some(Frame::Map { expecting_key }) if *expecting_key => {
                if let Some(key) = is_scalar_key_candidate {
                    *expecting_key = false;
                    self.path.push(PathStep::Key(key.to_string()));
                    self.positions
                        .insert(render_path(&self.path), Self::pos(mark));
                    return true;
                }
                // Complex keys are not used in topologies; index nothing for them.
                *expecting_key = false;
                self.path.push(PathStep::Key(String::from("?")));
                false
            }
            Some(Frame::Seq { next }) => {
                self.path.push(PathStep::Index(*next));
                *next += 1;
                self.positions
                    .entry(render_path(&self.path))
                    .or_insert(Self::pos(mark));
                false
            }
            _ => false,
        }
    }

    /// Called when a value node is complete.
    fn leave_value(&mut self) {
        match self.stack.last_mut() {
            Some(Frame::Map { expecting_key }) => {
                *expecting_key = true;
                self.path.pop();
            }
            Some(Frame::Seq { .. }) => {
                self.path.pop();
            }
            None => {}
        }
    }
}

impl MarkedEventReceiver for Collector {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        match ev {
            Event::Scalar(value, ..) => {
                if self.enter_node(mark, Some(&value)) {
                    return; // a key: its value follows
                }
                self.leave_value();
            }
            Event::MappingStart(..) => {
                self.enter_node(mark, None);
                self.stack.push(Frame::Map {
                    expecting_key: true,
                });
            }
            Event::SequenceStart(..) => {
                self.enter_node(mark, None);
                self.stack.push(Frame::Seq { next: 0 });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
                self.leave_value();
            }
            Event::Alias(_) => {
                self.enter_node(mark, None);
                self.leave_value();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn substitutes_env_and_defaults() {
        let env = |k: &str| (k == "HOST").then(|| "10.0.0.1".to_string());
        let out = substitute_env("a: ${HOST}:9092\nb: ${PORT:-8081}\nc: $$x\n", env).unwrap();
        assert_eq!(out, "a: 10.0.0.1:9092\nb: 8081\nc: $x\n");
    }

    #[test]
    fn missing_env_is_reported_with_position() {
        let errs = substitute_env("a: 1\nb:   ${NOPE}\n", |_| None).unwrap_err();
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].position, Position { line: 2, column: 6 });
        assert!(errs[0].message.contains("NOPE"), "{}", errs[0].message);
    }

    #[test]
    fn locates_nested_keys_and_sequence_items() {
        let text = "name: x\nkafka:\n  bootstrap_servers: b\nstages:\n  - name: a\n    type: tap\n  - name: b\n    input: ecs\n";
        let idx = PositionIndex::build(text);
        let at = |p: &[PathStep]| idx.locate(p).unwrap();
        assert_eq!(
            at(&[
                PathStep::Key("kafka".into()),
                PathStep::Key("bootstrap_servers".into())
            ]),
            Position { line: 3, column: 3 }
        );
        assert_eq!(
            at(&[
                PathStep::Key("stages".into()),
                PathStep::Index(1),
                PathStep::Key("input".into())
            ]),
            Position { line: 8, column: 5 }
        );
        // Missing key: reported on the line of the closest ancestor.
        assert_eq!(
            at(&[
                PathStep::Key("stages".into()),
                PathStep::Index(0),
                PathStep::Key("dlq".into())
            ])
            .line,
            5
        );
    }
}
