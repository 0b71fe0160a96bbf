//! The hand-written parser: tokens to a [`Node`] tree, by precedence
//! climbing, resolving functions and folding constant sub-expressions as it
//! goes.
//!
//! Precedence, lowest first: `?:`, `||`, `&&`, comparisons (not chained),
//! `+`, unary `!` and `-`, then literals, attributes, calls and parentheses.

use crate::ast::{CmpOp, Node};
use crate::error::CompileError;
use crate::functions::{Func, unknown_function_help};
use crate::lexer::{Tok, Token, lex};
use crate::shared::{Prepared, Shared};
use autosync_model::Value;

/// How deeply expressions may nest (parentheses, calls, operators).
const MAX_DEPTH: usize = 64;

/// The parsed expression and the attributes it reads, in first-use order.
pub(crate) struct Parsed {
    pub node: Node,
    pub attributes: Vec<String>,
}

pub(crate) fn parse(src: &str) -> Result<Parsed, CompileError> {
    let toks = lex(src)?;
    if toks.len() == 1 {
        return Err(CompileError::at(0, "the expression is empty")
            .with_help("write an attribute name, a literal such as \"text\", or a function call"));
    }
    let mut p = Parser {
        toks,
        pos: 0,
        depth: 0,
        src,
        attributes: Vec::new(),
    };
    let node = p.ternary()?;
    let tok = p.peek();
    if tok.tok != Tok::End {
        let help = match &tok.tok {
            Tok::Ident(_) | Tok::Quoted(_) | Tok::Str(_) | Tok::Int(_) => {
                "join values with `+`, or separate function arguments with `,`"
            }
            _ => "remove it, or add what should come before it",
        };
        return Err(
            CompileError::at(tok.offset, format!("unexpected {}", tok.tok.describe()))
                .with_help(help),
        );
    }
    Ok(Parsed {
        node,
        attributes: p.attributes,
    })
}

struct Parser<'s> {
    toks: Vec<Token>,
    pos: usize,
    depth: usize,
    src: &'s str,
    attributes: Vec<String>,
}

impl Parser<'_> {
    fn peek(&self) -> &Token {
        // The lexer always ends the list with `End`, and `bump` never moves
        // past it.
        &self.toks[self.pos.min(self.toks.len() - 1)]
    }

    fn bump(&mut self) -> Token {
        let tok = self.peek().clone();
        if self.pos < self.toks.len() - 1 {
            self.pos += 1;
        }
        tok
    }

    fn eat(&mut self, tok: &Tok) -> bool {
        if &self.peek().tok == tok {
            self.bump();
            true
        } else {
            false
        }
    }

    fn enter(&mut self, offset: usize) -> Result<(), CompileError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(CompileError::at(
                offset,
                format!("the expression nests more than {MAX_DEPTH} levels deep"),
            )
            .with_help("split it, or use a script"));
        }
        Ok(())
    }

    fn ternary(&mut self) -> Result<Node, CompileError> {
        let offset = self.peek().offset;
        self.enter(offset)?;
        let cond = self.or()?;
        let node = if self.eat(&Tok::Question) {
            let then = self.ternary()?;
            let colon = self.peek().clone();
            if !self.eat(&Tok::Colon) {
                return Err(CompileError::at(
                    colon.offset,
                    format!("expected `:` of `? :`, found {}", colon.tok.describe()),
                )
                .with_help("write `condition ? value_if_true : value_if_false`"));
            }
            let otherwise = self.ternary()?;
            fold(
                Node::Cond(Box::new(cond), Box::new(then), Box::new(otherwise)),
                offset,
            )?
        } else {
            cond
        };
        self.depth -= 1;
        Ok(node)
    }

    fn or(&mut self) -> Result<Node, CompileError> {
        let offset = self.peek().offset;
        let mut left = self.and()?;
        while self.eat(&Tok::Or) {
            let right = self.and()?;
            left = fold(Node::Or(Box::new(left), Box::new(right)), offset)?;
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Node, CompileError> {
        let offset = self.peek().offset;
        let mut left = self.comparison()?;
        while self.eat(&Tok::And) {
            let right = self.comparison()?;
            left = fold(Node::And(Box::new(left), Box::new(right)), offset)?;
        }
        Ok(left)
    }

    fn comparison(&mut self) -> Result<Node, CompileError> {
        let offset = self.peek().offset;
        let left = self.sum()?;
        let Some(op) = cmp_op(&self.peek().tok) else {
            return Ok(left);
        };
        self.bump();
        let right = self.sum()?;
        let next = self.peek();
        if cmp_op(&next.tok).is_some() {
            return Err(
                CompileError::at(next.offset, "comparisons cannot be chained")
                    .with_help("combine them with `&&`: `a < b && b < c`"),
            );
        }
        fold(Node::Cmp(op, Box::new(left), Box::new(right)), offset)
    }

    fn sum(&mut self) -> Result<Node, CompileError> {
        let offset = self.peek().offset;
        let mut parts = vec![self.unary()?];
        loop {
            if self.eat(&Tok::Plus) {
                parts.push(self.unary()?);
                continue;
            }
            let tok = self.peek().clone();
            if tok.tok == Tok::Minus {
                return Err(self.minus_error(&parts, tok.offset));
            }
            break;
        }
        if parts.len() == 1 {
            return Ok(parts.remove(0));
        }
        fold(Node::Add(parts.into_boxed_slice()), offset)
    }

    /// Binary `-` does not exist; most often it is a name such as
    /// `mail-nickname` written without back quotes.
    fn minus_error(&self, parts: &[Node], offset: usize) -> CompileError {
        let next = self.toks.get(self.pos + 1).map(|t| &t.tok);
        if let (Some(Node::Attr(_)), Some(Tok::Ident(_))) = (parts.last(), next) {
            let start = self.toks[..self.pos]
                .iter()
                .rev()
                .find(|t| matches!(t.tok, Tok::Ident(_)))
                .map_or(offset, |t| t.offset);
            let end = self
                .toks
                .get(self.pos + 2)
                .map_or(self.src.len(), |t| t.offset);
            let name = self.src.get(start..end).unwrap_or_default().trim();
            return CompileError::at(offset, "`-` is not allowed in a bare attribute name")
                .with_help(format!("write the name in back quotes: `{name}`"));
        }
        CompileError::at(offset, "subtraction is not supported")
            .with_help("`+` concatenates text and adds integers; use a script for arithmetic")
    }

    fn unary(&mut self) -> Result<Node, CompileError> {
        let tok = self.peek().clone();
        match tok.tok {
            Tok::Not => {
                self.bump();
                self.enter(tok.offset)?;
                let inner = self.unary()?;
                self.depth -= 1;
                fold(Node::Not(Box::new(inner)), tok.offset)
            }
            Tok::Minus => {
                self.bump();
                self.enter(tok.offset)?;
                let inner = self.unary()?;
                self.depth -= 1;
                fold(Node::Neg(Box::new(inner)), tok.offset)
            }
            _ => self.primary(),
        }
    }

    fn primary(&mut self) -> Result<Node, CompileError> {
        let tok = self.bump();
        match tok.tok {
            Tok::Str(s) => Ok(Node::Const(Some(s.into()))),
            Tok::Int(i) => Ok(Node::Const(Some(i.into()))),
            Tok::Quoted(name) => Ok(self.attribute(name)),
            Tok::Ident(name) => {
                if self.peek().tok == Tok::LParen {
                    return self.call(name, tok.offset);
                }
                Ok(match name.as_str() {
                    "true" => Node::Const(Some(true.into())),
                    "false" => Node::Const(Some(false.into())),
                    "null" => Node::Const(None),
                    _ => self.attribute(name),
                })
            }
            Tok::LParen => {
                let inner = self.ternary()?;
                let close = self.peek().clone();
                if !self.eat(&Tok::RParen) {
                    return Err(CompileError::at(
                        close.offset,
                        format!(
                            "expected `)` to close the `(` at byte {}, found {}",
                            tok.offset,
                            close.tok.describe()
                        ),
                    ));
                }
                Ok(inner)
            }
            other => {
                let help = match other {
                    Tok::End => "the expression stops before it is complete",
                    _ => "expected an attribute, a literal, a function call or `(`",
                };
                Err(
                    CompileError::at(tok.offset, format!("unexpected {}", other.describe()))
                        .with_help(help),
                )
            }
        }
    }

    fn attribute(&mut self, name: String) -> Node {
        if !self.attributes.contains(&name) {
            self.attributes.push(name.clone());
        }
        Node::Attr(name.into_boxed_str())
    }

    fn call(&mut self, name: String, offset: usize) -> Result<Node, CompileError> {
        let Some(func) = Func::by_name(&name) else {
            return Err(
                CompileError::at(offset, format!("unknown function `{name}`"))
                    .with_help(unknown_function_help(&name)),
            );
        };
        self.enter(offset)?;
        self.bump(); // `(`
        let mut args = Vec::new();
        let mut offsets = Vec::new();
        if !self.eat(&Tok::RParen) {
            loop {
                offsets.push(self.peek().offset);
                args.push(self.ternary()?);
                if self.eat(&Tok::Comma) {
                    continue;
                }
                let tok = self.peek().clone();
                if self.eat(&Tok::RParen) {
                    break;
                }
                return Err(CompileError::at(
                    tok.offset,
                    format!(
                        "expected `,` or `)` in the arguments of `{name}`, found {}",
                        tok.tok.describe()
                    ),
                ));
            }
        }
        self.depth -= 1;
        if let Some((message, help)) = func.check_arity(args.len()) {
            return Err(CompileError::at(offset, message).with_help(help));
        }
        if let Func::Shared(shared) = func {
            prepare_literals(shared, &name, &mut args, &offsets)?;
        }
        let node = if func == Func::If {
            let mut it = args.into_iter();
            match (it.next(), it.next(), it.next()) {
                (Some(c), Some(a), Some(b)) => Node::Cond(Box::new(c), Box::new(a), Box::new(b)),
                _ => Node::Const(None),
            }
        } else {
            Node::Call(func, args.into_boxed_slice())
        };
        fold(node, offset)
    }
}

/// Compile a literal pattern or date format (the second argument) now, so
/// that it is compiled once and a mistake in it is a compile error; check a
/// literal group of `regex_extract` against it.
fn prepare_literals(
    shared: Shared,
    name: &str,
    args: &mut [Node],
    offsets: &[usize],
) -> Result<(), CompileError> {
    let Some(kind) = shared.literal() else {
        return Ok(());
    };
    let offset = |i: usize| offsets.get(i).copied().unwrap_or_default();
    let Some(arg) = args.get_mut(1) else {
        return Ok(());
    };
    let Node::Const(Some(Value::String(literal))) = arg else {
        return Ok(());
    };
    let prepared = Prepared::compile(kind, name, literal)
        .map_err(|e| CompileError::at(offset(1), e.message).with_help(e.help))?;
    if let Some(Node::Const(group)) = args.get(2) {
        shared
            .check_group(name, &prepared, group.as_ref())
            .map_err(|e| CompileError::at(offset(2), e.message))?;
    }
    if let Some(arg) = args.get_mut(1) {
        *arg = Node::Prepared(Box::new(prepared));
    }
    Ok(())
}

fn cmp_op(tok: &Tok) -> Option<CmpOp> {
    Some(match tok {
        Tok::Eq => CmpOp::Eq,
        Tok::Ne => CmpOp::Ne,
        Tok::Lt => CmpOp::Lt,
        Tok::Le => CmpOp::Le,
        Tok::Gt => CmpOp::Gt,
        Tok::Ge => CmpOp::Ge,
        _ => return None,
    })
}

/// Evaluate a node whose operands are all constants now; an error there is
/// a compile error (`to_int("abc")` can never work).
fn fold(node: Node, offset: usize) -> Result<Node, CompileError> {
    if !node.operands_are_const() {
        return Ok(node);
    }
    match node.eval(&()) {
        Ok(v) => Ok(Node::Const(v.into_value())),
        Err(e) => Err(CompileError::at(offset, e.message)),
    }
}
