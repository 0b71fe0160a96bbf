//! The compiled form of an expression: a small tree with functions resolved
//! to an enum and constant sub-expressions already folded.

use crate::functions::Func;
use crate::shared::Prepared;
use autosync_model::Value;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    pub(crate) fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Node {
    /// A literal; `None` is `null` (absent).
    Const(Option<Value>),
    /// An attribute of the input.
    Attr(Box<str>),
    /// `a + b + c ...`, evaluated left to right (see docs/src/reference/expressions.md for the
    /// rules on integers and absent operands).
    Add(Box<[Node]>),
    Cmp(CmpOp, Box<Node>, Box<Node>),
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
    Not(Box<Node>),
    Neg(Box<Node>),
    /// `cond ? then : else`, also `if(cond, then, else)`.
    Cond(Box<Node>, Box<Node>, Box<Node>),
    Call(Func, Box<[Node]>),
    /// A literal argument compiled with the expression (a regular
    /// expression or a date format); it evaluates to the literal.
    Prepared(Box<Prepared>),
}

impl Node {
    pub(crate) fn is_const(&self) -> bool {
        matches!(self, Node::Const(_) | Node::Prepared(_))
    }

    /// Whether every direct operand is a constant (so the node can be
    /// evaluated at compile time).
    pub(crate) fn operands_are_const(&self) -> bool {
        match self {
            Node::Const(_) | Node::Attr(_) | Node::Prepared(_) => false,
            Node::Add(parts) | Node::Call(_, parts) => parts.iter().all(Node::is_const),
            Node::Cmp(_, a, b) | Node::And(a, b) | Node::Or(a, b) => a.is_const() && b.is_const(),
            Node::Not(a) | Node::Neg(a) => a.is_const(),
            Node::Cond(c, a, b) => c.is_const() && a.is_const() && b.is_const(),
        }
    }
}
