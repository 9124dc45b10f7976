//! Guest text as files: the templates under `profiles/` (a profile's steps) and
//! `src/provision/scripts/` (the engine's own), embedded at build time, and the small strict
//! filler that fills their `{{name}}` placeholders.
//!
//! Every placeholder must be given a value and every value given must be used: a mismatch is
//! a bug in `lab` (the templates are compiled in), so filling panics, and the golden tests,
//! which fill every template, catch it. In a shell template (`.sh`) a [`Fill::Word`] is
//! quoted with [`quote`] so it stays one literal word; a [`Fill::Text`] (a script fragment,
//! a glob, lines of a config file) goes in as it is. A shell template is a fragment joined
//! into a step's script, so its file's final newline is not part of it.

use super::step::quote;

/// One guest template: its path from the crate's root and its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Template {
    pub path: &'static str,
    pub text: &'static str,
}

/// Embeds `PATH` (from the crate's root) as a [`Template`].
macro_rules! guest {
    ($path:literal) => {
        $crate::provision::template::Template {
            path: $path,
            text: include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/", $path)),
        }
    };
}
pub(crate) use guest;

/// Declares a template's typed context: a struct with one `&str` field per placeholder, each
/// a `Word` or a `Text` (see [`Fill`]), and `render`, which fills the template with it. A
/// field left out does not compile; a placeholder without a field panics when rendered.
macro_rules! context {
    ($(#[$m:meta])* $vis:vis struct $name:ident = $path:literal { $($field:ident: $kind:ident),+ $(,)? }) => {
        $(#[$m])*
        #[doc = concat!("The context of `", $path, "`.")]
        $vis struct $name<'a> {
            $(pub $field: &'a str,)+
        }

        impl $name<'_> {
            /// The embedded template.
            pub const TEMPLATE: $crate::provision::template::Template =
                $crate::provision::template::guest!($path);

            /// The template filled with this context.
            pub fn render(&self) -> String {
                use $crate::provision::template::Fill;
                Self::TEMPLATE.fill(&[$((stringify!($field), Fill::$kind(self.$field))),+])
            }
        }
    };
}
pub(crate) use context;

/// A value for a placeholder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fill<'a> {
    /// A literal value: shell-quoted in a shell template.
    Word(&'a str),
    /// Text that goes in as it is: a script fragment, a glob, config lines.
    Text(&'a str),
}

impl Template {
    /// Whether values are shell-quoted and the final newline dropped.
    fn is_shell(&self) -> bool {
        self.path.ends_with(".sh")
    }

    /// The text of a template without placeholders (a shell one without its final newline).
    pub fn text(&self) -> String {
        self.fill(&[])
    }

    /// The text with every `{{name}}` replaced by its value. Panics on a placeholder without
    /// a value, a value without a placeholder, or an unclosed `{{`.
    pub fn fill(&self, values: &[(&str, Fill)]) -> String {
        let shell = self.is_shell();
        let text = if shell {
            self.text.strip_suffix('\n').unwrap_or(self.text)
        } else {
            self.text
        };
        let mut used = vec![false; values.len()];
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("{{") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find("}}")
                .unwrap_or_else(|| panic!("{}: unclosed {{{{", self.path));
            let name = &after[..end];
            let i = values
                .iter()
                .position(|(n, _)| *n == name)
                .unwrap_or_else(|| panic!("{}: no value for {{{{{name}}}}}", self.path));
            used[i] = true;
            match values[i].1 {
                Fill::Word(v) if shell => out.push_str(&quote(v)),
                Fill::Word(v) | Fill::Text(v) => out.push_str(v),
            }
            rest = &after[end + 2..];
        }
        out.push_str(rest);
        if let Some(i) = used.iter().position(|u| !u) {
            panic!("{}: {} is not a placeholder", self.path, values[i].0);
        }
        out
    }
}

/// A text file's content without its final newline, to fill a placeholder alone on its line.
pub fn lines(text: &str) -> &str {
    text.strip_suffix('\n').unwrap_or(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SH: Template = Template {
        path: "t.sh",
        text: "echo {{word}}\n{{text}}\n",
    };
    const CONF: Template = Template {
        path: "t.conf",
        text: "a = {{word}}\n",
    };

    #[test]
    fn shell_words_are_quoted_and_text_is_not() {
        let out = SH.fill(&[("word", Fill::Word("a b")), ("text", Fill::Text("ls *"))]);
        assert_eq!(out, "echo 'a b'\nls *");
        assert_eq!(CONF.fill(&[("word", Fill::Word("a b"))]), "a = a b\n");
    }

    #[test]
    #[should_panic(expected = "t.sh: no value for {{text}}")]
    fn an_unfilled_placeholder_is_caught() {
        SH.fill(&[("word", Fill::Word("x"))]);
    }

    #[test]
    #[should_panic(expected = "t.conf: extra is not a placeholder")]
    fn an_unknown_value_is_caught() {
        CONF.fill(&[("word", Fill::Word("x")), ("extra", Fill::Word("y"))]);
    }

    #[test]
    #[should_panic(expected = "unclosed")]
    fn an_unclosed_placeholder_is_caught() {
        Template {
            path: "t.conf",
            text: "a = {{word\n",
        }
        .fill(&[]);
    }
}
