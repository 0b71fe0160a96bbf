//! Tokens of the expression language and the hand-written lexer that turns a
//! source string into them, each with its byte offset.

use crate::error::CompileError;

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Tok {
    Str(String),
    Int(i64),
    /// A bare identifier (attribute, function or keyword).
    Ident(String),
    /// A back-quoted attribute name.
    Quoted(String),
    Plus,
    Minus,
    LParen,
    RParen,
    Comma,
    Question,
    Colon,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    And,
    Or,
    Not,
    End,
}

impl Tok {
    /// How the token is shown in "expected X, found Y" messages.
    pub(crate) fn describe(&self) -> String {
        match self {
            Tok::Str(s) => format!("string {s:?}"),
            Tok::Int(i) => format!("integer {i}"),
            Tok::Ident(s) => format!("`{s}`"),
            Tok::Quoted(s) => format!("attribute `{s}`"),
            Tok::Plus => "`+`".into(),
            Tok::Minus => "`-`".into(),
            Tok::LParen => "`(`".into(),
            Tok::RParen => "`)`".into(),
            Tok::Comma => "`,`".into(),
            Tok::Question => "`?`".into(),
            Tok::Colon => "`:`".into(),
            Tok::Eq => "`==`".into(),
            Tok::Ne => "`!=`".into(),
            Tok::Lt => "`<`".into(),
            Tok::Le => "`<=`".into(),
            Tok::Gt => "`>`".into(),
            Tok::Ge => "`>=`".into(),
            Tok::And => "`&&`".into(),
            Tok::Or => "`||`".into(),
            Tok::Not => "`!`".into(),
            Tok::End => "the end of the expression".into(),
        }
    }
}

/// A token and the byte offset where it starts.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Token {
    pub tok: Tok,
    pub offset: usize,
}

/// Whether `c` may appear in a bare attribute name.
pub(crate) fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Split `src` into tokens; the last one is always [`Tok::End`].
pub(crate) fn lex(src: &str) -> Result<Vec<Token>, CompileError> {
    let mut out = Vec::new();
    let mut chars = src.char_indices().peekable();
    while let Some(&(offset, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let tok = match c {
            '"' | '\'' => {
                chars.next();
                Tok::Str(lex_string(offset, c, &mut chars)?)
            }
            '`' => {
                chars.next();
                let start = offset + 1;
                let mut end = None;
                for (i, ch) in chars.by_ref() {
                    if ch == '`' {
                        end = Some(i);
                        break;
                    }
                }
                let end = end.ok_or_else(|| {
                    CompileError::at(offset, "unterminated back-quoted attribute name")
                        .with_help("close the name with another back quote: `mail-nickname`")
                })?;
                let name = &src[start..end];
                if name.is_empty() {
                    return Err(CompileError::at(offset, "empty attribute name ``"));
                }
                Tok::Quoted(name.to_owned())
            }
            '0'..='9' => {
                chars.next();
                if c == '0' && matches!(chars.peek(), Some((_, 'x' | 'X'))) {
                    chars.next();
                    out.push(Token {
                        tok: Tok::Int(lex_hex(src, offset, &mut chars)?),
                        offset,
                    });
                    continue;
                }
                let mut end = offset + 1;
                while let Some(&(i, ch)) = chars.peek() {
                    if ch.is_ascii_digit() {
                        end = i + 1;
                        chars.next();
                    } else if is_ident_char(ch) {
                        return Err(CompileError::at(offset, "a name cannot start with a digit")
                            .with_help(
                                "write names that start with a digit in back quotes: `2fa_method`",
                            ));
                    } else {
                        break;
                    }
                }
                let text = &src[offset..end];
                let n = text.parse::<i64>().map_err(|_| {
                    CompileError::at(offset, format!("integer {text} is too large")).with_help(
                        "integers must lie between -9223372036854775808 and 9223372036854775807",
                    )
                })?;
                Tok::Int(n)
            }
            c if is_ident_char(c) => {
                let mut end = offset;
                while let Some(&(i, ch)) = chars.peek() {
                    if is_ident_char(ch) {
                        end = i + ch.len_utf8();
                        chars.next();
                    } else {
                        break;
                    }
                }
                Tok::Ident(src[offset..end].to_owned())
            }
            _ => {
                chars.next();
                let next = chars.peek().map(|&(_, ch)| ch);
                let mut two = |tok: Tok| {
                    chars.next();
                    tok
                };
                match (c, next) {
                    ('+', _) => Tok::Plus,
                    ('-', _) => Tok::Minus,
                    ('(', _) => Tok::LParen,
                    (')', _) => Tok::RParen,
                    (',', _) => Tok::Comma,
                    ('?', _) => Tok::Question,
                    (':', _) => Tok::Colon,
                    ('=', Some('=')) => two(Tok::Eq),
                    ('!', Some('=')) => two(Tok::Ne),
                    ('<', Some('=')) => two(Tok::Le),
                    ('>', Some('=')) => two(Tok::Ge),
                    ('&', Some('&')) => two(Tok::And),
                    ('|', Some('|')) => two(Tok::Or),
                    ('<', _) => Tok::Lt,
                    ('>', _) => Tok::Gt,
                    ('!', _) => Tok::Not,
                    ('=', _) => {
                        return Err(CompileError::at(offset, "unexpected `=`")
                            .with_help("use `==` to compare; expressions cannot assign"));
                    }
                    ('&', _) => {
                        return Err(CompileError::at(offset, "unexpected `&`")
                            .with_help("use `&&` for \"and\""));
                    }
                    ('|', _) => {
                        return Err(CompileError::at(offset, "unexpected `|`")
                            .with_help("use `||` for \"or\""));
                    }
                    _ => {
                        return Err(CompileError::at(offset, format!("unexpected character {c:?}"))
                            .with_help("attribute names with other characters than letters, digits and `_` go in back quotes: `mail-nickname`"));
                    }
                }
            }
        };
        out.push(Token { tok, offset });
    }
    out.push(Token {
        tok: Tok::End,
        offset: src.len(),
    });
    Ok(out)
}

/// The digits of a hexadecimal integer after its `0x` (at `offset`).
fn lex_hex(
    src: &str,
    offset: usize,
    chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>,
) -> Result<i64, CompileError> {
    let start = offset + 2;
    let mut end = start;
    while let Some(&(i, ch)) = chars.peek() {
        if ch.is_ascii_hexdigit() {
            end = i + 1;
            chars.next();
        } else if is_ident_char(ch) {
            return Err(
                CompileError::at(i, format!("`{ch}` is not a hexadecimal digit"))
                    .with_help("hexadecimal integers use the digits 0-9 and a-f: 0x200"),
            );
        } else {
            break;
        }
    }
    let digits = &src[start..end];
    if digits.is_empty() {
        return Err(
            CompileError::at(offset, "`0x` must be followed by hexadecimal digits")
                .with_help("write a hexadecimal integer such as 0x2"),
        );
    }
    i64::from_str_radix(digits, 16).map_err(|_| {
        CompileError::at(offset, format!("integer 0x{digits} is too large"))
            .with_help("integers must lie between -0x8000000000000000 and 0x7fffffffffffffff")
    })
}

fn lex_string(
    offset: usize,
    quote: char,
    chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>,
) -> Result<String, CompileError> {
    let mut s = String::new();
    loop {
        let Some((i, ch)) = chars.next() else {
            return Err(CompileError::at(offset, "unterminated string")
                .with_help(format!("close the string with {quote}")));
        };
        match ch {
            c if c == quote => return Ok(s),
            '\\' => {
                let Some((_, esc)) = chars.next() else {
                    return Err(CompileError::at(offset, "unterminated string")
                        .with_help(format!("close the string with {quote}")));
                };
                match esc {
                    '"' => s.push('"'),
                    '\'' => s.push('\''),
                    '\\' => s.push('\\'),
                    'n' => s.push('\n'),
                    't' => s.push('\t'),
                    'r' => s.push('\r'),
                    other => {
                        return Err(CompileError::at(
                            i,
                            format!("unknown escape `\\{other}` in a string"),
                        )
                        .with_help(
                            "the escapes are \\\" \\' \\\\ \\n \\t \\r; write a backslash as \\\\",
                        ));
                    }
                }
            }
            c => s.push(c),
        }
    }
}
