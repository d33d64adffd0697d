//! What a job kind takes: its fields, their types, ranges and defaults.
//!
//! A kind declares its fields once ([`KindSchema`]). The server fills in
//! defaults and checks ranges with it before the kind's own checks run, and
//! the home page renders its start form from it, so nothing about a field is
//! written twice. Problems are structured ([`Problem`]) so a page can say
//! them in the visitor's language; `Display` gives the English the JSON API
//! answers with.

use serde::{Deserialize, Serialize};

/// A job kind's name and fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KindSchema {
    /// The kind's name, as `POST /api/jobs` takes it.
    pub name: String,
    /// Its fields, in the order a form shows them.
    pub fields: Vec<FieldSchema>,
    /// Offered in the home page's form. Kinds for tools (load tests) are not.
    pub in_form: bool,
}

/// One field of a kind's params.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldSchema {
    /// The JSON key (and form field name).
    pub name: String,
    /// What it holds and its bounds.
    pub ty: FieldType,
    /// Whether it must be given. A field with a default never is.
    pub required: bool,
    /// Used when the field is missing or `null`.
    pub default: Option<FieldValue>,
    /// Put in the form for a field with no default, as a starting point.
    pub example: Option<FieldValue>,
}

/// The type and bounds of a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum FieldType {
    /// A whole number from `min` to `max`.
    Integer { min: i64, max: i64 },
    /// One non-empty text of at most `max_chars` characters.
    Text { max_chars: usize },
    /// A list of 1 to `max_lines` non-empty texts (a textarea, one a line).
    Lines { max_lines: usize },
}

/// A field's value. In JSON: a number, a string or an array of strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FieldValue {
    /// For [`FieldType::Integer`].
    Integer(i64),
    /// For [`FieldType::Text`].
    Text(String),
    /// For [`FieldType::Lines`].
    Lines(Vec<String>),
}

impl FieldValue {
    /// The value as a form shows it: lines one a line.
    pub fn to_form(&self) -> String {
        match self {
            FieldValue::Integer(n) => n.to_string(),
            FieldValue::Text(t) => t.clone(),
            FieldValue::Lines(lines) => lines.join("\n"),
        }
    }
}

/// What is wrong with a field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Problem {
    /// A number outside its range.
    OutOfRange { min: i64, max: i64, got: i64 },
    /// A text longer than allowed (in characters).
    TooLong { max: usize, got: usize },
    /// A text or list that must not be empty.
    Empty,
    /// A form field that should hold a whole number does not.
    NotANumber,
    /// Anything else (wrong type, unknown field, a relation between fields).
    Invalid(String),
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::OutOfRange { min, max, got } => {
                write!(f, "must be between {min} and {max}, got {got}")
            }
            Problem::TooLong { max, got } => {
                write!(f, "must be at most {max} characters, got {got}")
            }
            Problem::Empty => f.write_str("must not be empty"),
            Problem::NotANumber => f.write_str("must be a whole number"),
            Problem::Invalid(text) => f.write_str(text),
        }
    }
}

impl std::error::Error for Problem {}

/// A problem with a named field (`messages[3]` for a line of `messages`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldProblem {
    /// The field's name, with an index for an item of a list.
    pub field: String,
    /// What is wrong with it.
    pub problem: Problem,
}

impl std::fmt::Display for FieldProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.problem)
    }
}

impl std::error::Error for FieldProblem {}

impl FieldProblem {
    /// `problem` with `field`.
    pub fn new(field: impl Into<String>, problem: Problem) -> Self {
        FieldProblem {
            field: field.into(),
            problem,
        }
    }

    /// The form field this is about (`messages` for `messages[3]`).
    pub fn form_field(&self) -> &str {
        self.field.split('[').next().unwrap_or_default()
    }
}

/// The text SSE cannot carry: clients drop events with empty data.
const EMPTY_LINE: &str = "must not be empty (an SSE event cannot carry empty data)";

impl FieldSchema {
    /// An integer field from `min` to `max` with a default.
    pub fn integer(name: &str, min: i64, max: i64, default: i64) -> Self {
        Self::new(
            name,
            FieldType::Integer { min, max },
            Some(FieldValue::Integer(default)),
        )
    }

    /// An optional text field of at most `max_chars` characters.
    pub fn optional_text(name: &str, max_chars: usize) -> Self {
        Self::new(name, FieldType::Text { max_chars }, None)
    }

    /// A required list of up to `max_lines` lines, with an example for forms.
    pub fn lines(name: &str, max_lines: usize, example: &[&str]) -> Self {
        let mut field = Self::new(name, FieldType::Lines { max_lines }, None);
        field.required = true;
        field.example = Some(FieldValue::Lines(
            example.iter().map(|l| (*l).to_owned()).collect(),
        ));
        field
    }

    /// A required integer field with no default (for tools, not forms).
    pub fn required_integer(name: &str, min: i64, max: i64) -> Self {
        let mut field = Self::new(name, FieldType::Integer { min, max }, None);
        field.required = true;
        field
    }

    fn new(name: &str, ty: FieldType, default: Option<FieldValue>) -> Self {
        FieldSchema {
            name: name.to_owned(),
            ty,
            required: false,
            default,
            example: None,
        }
    }

    /// What a form shows in the field at first.
    pub fn initial_form_value(&self) -> String {
        self.default
            .as_ref()
            .or(self.example.as_ref())
            .map(FieldValue::to_form)
            .unwrap_or_default()
    }

    /// Reads the field from a form's text: `None` when left blank (the
    /// default applies), the value otherwise. Texts are trimmed; lines are
    /// split and blank ones skipped.
    pub fn parse_form(&self, text: &str) -> Result<Option<FieldValue>, FieldProblem> {
        let text = text.trim();
        if text.is_empty() && !matches!(self.ty, FieldType::Lines { .. }) {
            return Ok(None);
        }
        Ok(Some(match self.ty {
            FieldType::Integer { .. } => FieldValue::Integer(
                text.parse()
                    .map_err(|_| FieldProblem::new(&self.name, Problem::NotANumber))?,
            ),
            FieldType::Text { .. } => FieldValue::Text(text.to_owned()),
            FieldType::Lines { .. } => FieldValue::Lines(
                text.lines()
                    .map(str::trim_end)
                    .filter(|l| !l.is_empty())
                    .map(str::to_owned)
                    .collect(),
            ),
        }))
    }

    /// Checks a value of the right type against the field's bounds.
    pub fn check(&self, value: &FieldValue) -> Result<(), FieldProblem> {
        let name = &self.name;
        let problem = |p| Err(FieldProblem::new(name, p));
        match (self.ty, value) {
            (FieldType::Integer { min, max }, FieldValue::Integer(got)) => {
                if *got < min || *got > max {
                    return problem(Problem::OutOfRange {
                        min,
                        max,
                        got: *got,
                    });
                }
            }
            (FieldType::Text { max_chars }, FieldValue::Text(text)) => {
                let got = text.chars().count();
                if got == 0 {
                    return problem(Problem::Empty);
                }
                if got > max_chars {
                    return problem(Problem::TooLong {
                        max: max_chars,
                        got,
                    });
                }
            }
            (FieldType::Lines { max_lines }, FieldValue::Lines(lines)) => {
                let got = i64::try_from(lines.len()).unwrap_or(i64::MAX);
                let max = i64::try_from(max_lines).unwrap_or(i64::MAX);
                if got < 1 || got > max {
                    return problem(Problem::OutOfRange { min: 1, max, got });
                }
                if let Some(i) = lines.iter().position(String::is_empty) {
                    return Err(FieldProblem::new(
                        format!("{name}[{i}]"),
                        Problem::Invalid(EMPTY_LINE.to_owned()),
                    ));
                }
            }
            _ => return problem(Problem::Invalid(format!("must be {}", self.ty.describe()))),
        }
        Ok(())
    }
}

impl FieldType {
    /// "a whole number", "a text", "a list of texts".
    pub fn describe(self) -> &'static str {
        match self {
            FieldType::Integer { .. } => "a whole number",
            FieldType::Text { .. } => "a text",
            FieldType::Lines { .. } => "a list of texts",
        }
    }
}

impl KindSchema {
    /// The field called `name`.
    pub fn field(&self, name: &str) -> Option<&FieldSchema> {
        self.fields.iter().find(|f| f.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_checked_against_their_range() {
        let steps = FieldSchema::integer("steps", 1, 1000, 4);
        assert!(steps.check(&FieldValue::Integer(1000)).is_ok());
        let e = steps.check(&FieldValue::Integer(0)).unwrap_err();
        assert_eq!(e.to_string(), "steps: must be between 1 and 1000, got 0");
        assert_eq!(steps.initial_form_value(), "4");
    }

    #[test]
    fn forms_read_blank_as_default_and_refuse_words_for_numbers() {
        let steps = FieldSchema::integer("steps", 1, 1000, 4);
        assert_eq!(steps.parse_form("  "), Ok(None));
        assert_eq!(steps.parse_form(" 7 "), Ok(Some(FieldValue::Integer(7))));
        assert_eq!(
            steps.parse_form("a lot").unwrap_err().problem,
            Problem::NotANumber
        );
        let lines = FieldSchema::lines("messages", 3, &["hello", "world"]);
        assert_eq!(lines.initial_form_value(), "hello\nworld");
        assert_eq!(
            lines.parse_form("a\n\n b \n"),
            Ok(Some(FieldValue::Lines(vec!["a".into(), " b".into()])))
        );
    }

    #[test]
    fn texts_and_lines_have_bounds() {
        let message = FieldSchema::optional_text("message", 3);
        assert_eq!(
            message
                .check(&FieldValue::Text("abcd".into()))
                .unwrap_err()
                .problem,
            Problem::TooLong { max: 3, got: 4 }
        );
        let lines = FieldSchema::lines("messages", 2, &[]);
        let e = lines
            .check(&FieldValue::Lines(vec!["a".into(), String::new()]))
            .unwrap_err();
        assert_eq!(e.field, "messages[1]");
        assert_eq!(e.form_field(), "messages");
        assert!(matches!(
            lines.check(&FieldValue::Lines(vec![])).unwrap_err().problem,
            Problem::OutOfRange {
                min: 1,
                max: 2,
                got: 0
            }
        ));
        assert!(lines.check(&FieldValue::Integer(1)).is_err());
    }

    #[test]
    fn values_are_plain_json() {
        let v = FieldValue::Lines(vec!["a".into()]);
        assert_eq!(serde_json::to_string(&v).unwrap(), r#"["a"]"#);
        assert_eq!(serde_json::to_string(&FieldValue::Integer(4)).unwrap(), "4");
    }
}
