//! Bounds on what one rendering may produce, whatever the template does. minijinja's fuel limits
//! instructions, not what they make: a single `{{ "x" * 100000000 }}`, an `indent` or a `format`
//! width, or a few self-concatenations can build hundreds of megabytes. So every rendering of a
//! user template runs with a budget of bytes: the operators that build values (`+`, `*`, `~`) are
//! compiled into calls of bounded versions, every filter is checked before it runs where its
//! output can outgrow its input (and charged after), and every byte written, `{{ }}` and raw text
//! alike (into the output or into a `{% set %}` capture), goes through a capped writer. A rendering that would go past the budget or its part's limit stops with
//! [`Exceeded`], which callers turn into a 422 naming the template and the limit.

use std::cell::RefCell;
use std::fmt::{self, Write as _};

use minijinja::machinery::{CompiledTemplate, Instruction, Instructions, TemplateConfig, Vm};
use minijinja::value::{Rest, Value, ValueKind};
use minijinja::{AutoEscape, Environment, Error, ErrorKind, State};

/// Instructions a rendering may execute at most (loops included).
pub const FUEL: u64 = 100_000;

/// What a part of a message may hold once rendered, and what its rendering may build on the way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartLimit {
    /// The part, as the error names it: `subject`, `email body`, `SMS`, ...
    pub name: &'static str,
    /// Most characters the rendered part may have.
    pub max_chars: usize,
    /// Most bytes (UTF-8) the rendered part may take.
    pub max_bytes: usize,
}

impl PartLimit {
    /// Bytes every value and every piece of output built during one rendering may add up to: a
    /// few times the part itself, at least 1 MiB, so real templates never meet it.
    pub fn budget(self) -> usize {
        self.max_bytes.saturating_mul(8).max(1 << 20)
    }
}

/// The rendering stopped because it would have gone past a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exceeded {
    pub limit: PartLimit,
    pub what: Bound,
}

/// Which bound a rendering met.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// The rendered part itself.
    Output,
    /// What the rendering builds on the way (its budget of bytes).
    Built,
    /// The instructions it may execute (its fuel).
    Steps(u64),
}

impl fmt::Display for Exceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let PartLimit {
            name, max_chars, ..
        } = self.limit;
        match self.what {
            Bound::Output => write!(
                f,
                "the rendered {name} would be longer than {max_chars} characters, its limit"
            ),
            Bound::Built => write!(
                f,
                "rendering the {name} would build more than {} bytes of text (its limit is {max_chars} characters)",
                self.limit.budget()
            ),
            Bound::Steps(fuel) => write!(
                f,
                "rendering the {name} takes more than {fuel} steps, the limit for this template"
            ),
        }
    }
}

/// The bytes left to one rendering, on this thread (rendering is synchronous: every filter and
/// operator of a rendering runs on the thread that started it).
#[derive(Debug)]
struct Budget {
    limit: PartLimit,
    left: usize,
    exceeded: Option<Exceeded>,
}

thread_local! {
    static BUDGET: RefCell<Option<Budget>> = const { RefCell::new(None) };
}

/// The budget of one rendering on this thread, for as long as it lives: the budget that was in
/// place before (none, outside a rendering) comes back when it is dropped, even by a panic.
struct Charging {
    /// What to put back: `Some` until the rendering ends.
    previous: Option<Option<Budget>>,
}

impl Charging {
    fn start(limit: PartLimit) -> Self {
        let previous = BUDGET.replace(Some(Budget {
            limit,
            left: limit.budget(),
            exceeded: None,
        }));
        Self {
            previous: Some(previous),
        }
    }

    /// Ends the rendering's budget: the limit it met, if it met one.
    fn finish(mut self) -> Option<Exceeded> {
        let previous = self.previous.take().flatten();
        BUDGET.replace(previous).and_then(|b| b.exceeded)
    }
}

impl Drop for Charging {
    fn drop(&mut self) {
        if let Some(previous) = self.previous.take() {
            BUDGET.set(previous);
        }
    }
}

/// Takes `bytes` from the running rendering's budget, or fails it.
fn charge(bytes: usize) -> Result<(), Error> {
    BUDGET.with_borrow_mut(|budget| match budget {
        Some(b) if bytes <= b.left => {
            b.left -= bytes;
            Ok(())
        }
        Some(b) => {
            b.left = 0;
            b.exceeded.get_or_insert(Exceeded {
                limit: b.limit,
                what: Bound::Built,
            });
            Err(too_large())
        }
        None => Ok(()),
    })
}

fn left() -> usize {
    BUDGET.with_borrow(|b| b.as_ref().map_or(usize::MAX, |b| b.left))
}

fn too_large() -> Error {
    Error::new(
        ErrorKind::InvalidOperation,
        "the template builds more text than a message may hold",
    )
}

/// What a value weighs: the bytes of its strings, 8 for anything else, sequences and maps the sum
/// of their items. Stops counting past `cap` (the walk costs at most `cap / 8` items).
pub fn weight(value: &Value, cap: usize) -> usize {
    fn walk(value: &Value, cap: usize, depth: usize, total: &mut usize) {
        if *total > cap {
            return;
        }
        match value.kind() {
            ValueKind::String => *total += value.as_str().map_or(0, str::len),
            ValueKind::Seq | ValueKind::Iterable | ValueKind::Map if depth < 32 => {
                *total += 8;
                let Ok(items) = value.try_iter() else { return };
                let is_map = value.kind() == ValueKind::Map;
                for item in items {
                    if *total > cap {
                        return;
                    }
                    *total += 8;
                    if is_map {
                        walk(
                            &value.get_item(&item).unwrap_or_default(),
                            cap,
                            depth + 1,
                            total,
                        );
                    }
                    walk(&item, cap, depth + 1, total);
                }
            }
            _ => *total += 8,
        }
    }
    let mut total = 0;
    walk(value, cap, 0, &mut total);
    total
}

/// Fails unless `bytes` more would still fit the budget (without taking them).
fn fits(bytes: usize) -> Result<(), Error> {
    if bytes <= left() {
        Ok(())
    } else {
        charge(bytes)
    }
}

/// Charges what a value built by a filter or operator weighs. Lazy sequences are charged when
/// something makes them concrete (a `list`, an output), not here.
fn charge_value(value: &Value) -> Result<(), Error> {
    match value.kind() {
        ValueKind::String | ValueKind::Seq | ValueKind::Map => {
            charge(weight(value, left().saturating_add(1)))
        }
        _ => Ok(()),
    }
}

/// A writer that takes every byte from the budget, so a single `{{ }}` of a large list stops as
/// soon as it would go past it instead of after it was written.
struct Capped<'a, W: fmt::Write + ?Sized>(&'a mut W);

impl<W: fmt::Write + ?Sized> fmt::Write for Capped<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        charge(s.len()).map_err(|_| fmt::Error)?;
        self.0.write_str(s)
    }
}

/// Displays `value` into a new string, charged byte by byte.
fn display(value: &Value) -> Result<String, Error> {
    let mut out = String::new();
    write!(Capped(&mut out), "{value}").map_err(|_| too_large())?;
    Ok(out)
}

/// The formatter every `{{ }}` goes through: values are shown (HTML-escaped where the template
/// escapes) through the capped writer, so one output can never go past the budget.
pub fn emit(out: &mut minijinja::Output, state: &State, value: &Value) -> Result<(), Error> {
    let escape = state.auto_escape() == AutoEscape::Html && !value.is_safe();
    // Written straight to the output: a failure fails the whole rendering, so nothing partial
    // is ever used.
    let mut capped = Capped(out);
    let written = match value.as_str() {
        Some(text) if escape => super::write_html_escaped(&mut capped, text),
        Some(text) => capped.write_str(text),
        None if escape => super::write_html_escaped(&mut capped, &display(value)?),
        None => write!(capped, "{value}"),
    };
    written.map_err(|_| too_large())
}

/// Operators compiled into calls of these functions (see [`bound_operators`]); the names cannot
/// collide with template variables, which are plain identifiers without a leading underscore.
const ADD: &str = "__herald_add";
const MUL: &str = "__herald_mul";
const CONCAT: &str = "__herald_concat";
const SLICE: &str = "__herald_slice";

/// Registers the bounded operators and wraps every filter of `env` so that none can build past
/// the budget. Call after the environment's own filters are added.
pub fn install(env: &mut Environment<'_>) {
    env.add_function(ADD, |a: Value, b: Value| {
        match (a.kind(), b.kind()) {
            (ValueKind::String, ValueKind::String) => {
                let bytes = a.as_str().map_or(0, str::len) + b.as_str().map_or(0, str::len);
                charge(bytes)?;
            }
            (ValueKind::Seq | ValueKind::Iterable, ValueKind::Seq | ValueKind::Iterable) => {
                let items = a.len().unwrap_or(0).saturating_add(b.len().unwrap_or(0));
                charge(items.saturating_mul(8))?;
            }
            _ => {}
        }
        binary(Operator::Add, a, b)
    });
    env.add_function(MUL, |a: Value, b: Value| {
        let (item, count) = if a.is_number() { (&b, &a) } else { (&a, &b) };
        if !item.is_number() {
            let count = count.as_usize().unwrap_or(0);
            let unit = match item.kind() {
                ValueKind::String => item.as_str().map_or(0, str::len),
                _ => item.len().unwrap_or(1).saturating_mul(8),
            };
            charge(unit.saturating_mul(count))?;
        }
        binary(Operator::Mul, a, b)
    });
    // A slice copies what it keeps (`name[::-1]`): at most the value itself.
    env.add_function(
        SLICE,
        |value: Value, start: Value, stop: Value, step: Value| -> Result<Value, Error> {
            if value.is_undefined() {
                return Err(Error::from(ErrorKind::UndefinedError));
            }
            charge(weight(&value, left().saturating_add(1)))?;
            slice(value, start, stop, step)
        },
    );
    // Functions that show or build from the whole context are not for message templates.
    env.remove_global("debug");
    env.add_function(CONCAT, |a: Value, b: Value| -> Result<Value, Error> {
        let mut joined = display(&a)?;
        joined.push_str(&display(&b)?);
        Ok(Value::from(joined))
    });

    for name in FILTERS {
        let Some(inner) = builtin_filter(name) else {
            continue;
        };
        env.add_filter(*name, move |state: &State, args: Rest<Value>| {
            precheck(name, &args)?;
            let out = inner.call(state, &args)?;
            charge_value(&out)?;
            Ok::<_, Error>(out)
        });
    }
}

#[derive(Debug, Clone, Copy)]
enum Operator {
    Add,
    Mul,
}

/// minijinja's own operators and slicing, once the sizes are checked: expressions compiled once in
/// an environment of their own, where nothing is bounded.
fn plain(
    expression: &'static str,
) -> &'static Result<minijinja::Expression<'static, 'static>, Error> {
    use std::collections::HashMap;
    use std::sync::{LazyLock, Mutex};
    static PLAIN: LazyLock<Environment<'static>> = LazyLock::new(Environment::new);
    type Compiled = &'static Result<minijinja::Expression<'static, 'static>, Error>;
    static COMPILED: LazyLock<Mutex<HashMap<&'static str, Compiled>>> =
        LazyLock::new(Default::default);
    let mut compiled = COMPILED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    compiled
        .entry(expression)
        .or_insert_with(|| Box::leak(Box::new(PLAIN.compile_expression(expression))))
}

fn eval(expression: &'static str, context: Value) -> Result<Value, Error> {
    plain(expression)
        .as_ref()
        .map_err(|e| Error::new(ErrorKind::InvalidOperation, e.to_string()))?
        .eval(context)
}

fn binary(operator: Operator, a: Value, b: Value) -> Result<Value, Error> {
    let expression = match operator {
        Operator::Add => "a + b",
        Operator::Mul => "a * b",
    };
    eval(expression, minijinja::context! { a => a, b => b })
}

fn slice(value: Value, start: Value, stop: Value, step: Value) -> Result<Value, Error> {
    eval(
        "value[start:stop:step]",
        minijinja::context! { value => value, start => start, stop => stop, step => step },
    )
}

/// Every built-in filter, wrapped by [`install`].
const FILTERS: &[&str] = &[
    "safe",
    "escape",
    "e",
    "lower",
    "upper",
    "title",
    "capitalize",
    "replace",
    "length",
    "count",
    "dictsort",
    "items",
    "reverse",
    "trim",
    "join",
    "split",
    "lines",
    "default",
    "d",
    "round",
    "abs",
    "int",
    "float",
    "attr",
    "first",
    "last",
    "min",
    "max",
    "sort",
    "list",
    "string",
    "bool",
    "batch",
    "slice",
    "sum",
    "indent",
    "select",
    "reject",
    "selectattr",
    "rejectattr",
    "map",
    "groupby",
    "unique",
    "chain",
    "zip",
    "pprint",
    "format",
    "urlencode",
];

fn builtin_filter(name: &str) -> Option<Value> {
    use minijinja::filters as f;
    Some(match name {
        "safe" => Value::from_function(f::safe),
        "escape" | "e" => Value::from_function(f::escape),
        "lower" => Value::from_function(f::lower),
        "upper" => Value::from_function(f::upper),
        "title" => Value::from_function(f::title),
        "capitalize" => Value::from_function(f::capitalize),
        "replace" => Value::from_function(f::replace),
        "length" | "count" => Value::from_function(f::length),
        "dictsort" => Value::from_function(f::dictsort),
        "items" => Value::from_function(f::items),
        "reverse" => Value::from_function(f::reverse),
        "trim" => Value::from_function(f::trim),
        "join" => Value::from_function(f::join),
        "split" => Value::from_function(f::split),
        "lines" => Value::from_function(f::lines),
        "default" | "d" => Value::from_function(f::default),
        "round" => Value::from_function(f::round),
        "abs" => Value::from_function(f::abs),
        "int" => Value::from_function(f::int),
        "float" => Value::from_function(f::float),
        "attr" => Value::from_function(f::attr),
        "first" => Value::from_function(f::first),
        "last" => Value::from_function(f::last),
        "min" => Value::from_function(f::min),
        "max" => Value::from_function(f::max),
        "sort" => Value::from_function(f::sort),
        "list" => Value::from_function(f::list),
        "string" => Value::from_function(f::string),
        "bool" => Value::from_function(f::bool),
        "batch" => Value::from_function(f::batch),
        "slice" => Value::from_function(f::slice),
        "sum" => Value::from_function(f::sum),
        "indent" => Value::from_function(f::indent),
        "select" => Value::from_function(f::select),
        "reject" => Value::from_function(f::reject),
        "selectattr" => Value::from_function(f::selectattr),
        "rejectattr" => Value::from_function(f::rejectattr),
        "map" => Value::from_function(f::map),
        "groupby" => Value::from_function(f::groupby),
        "unique" => Value::from_function(f::unique),
        "chain" => Value::from_function(f::chain),
        "zip" => Value::from_function(f::zip),
        "pprint" => Value::from_function(f::pprint),
        "format" => Value::from_function(f::format),
        "urlencode" => Value::from_function(f::urlencode),
        _ => return None,
    })
}

/// Refuses a filter call whose output could outgrow what is left, before it runs. Filters not
/// named here make at most as much as they are given, and are charged after.
fn precheck(name: &str, args: &[Value]) -> Result<(), Error> {
    let cap = left().saturating_add(1);
    let input = || {
        args.iter()
            .map(|a| weight(a, cap))
            .fold(0usize, usize::saturating_add)
    };
    let arg = |i: usize, keyword: &str| {
        args.iter()
            .rev()
            .find(|a| a.is_kwargs())
            .and_then(|k| k.get_attr(keyword).ok())
            .filter(|v| !v.is_undefined())
            .or_else(|| args.get(i).filter(|a| !a.is_kwargs()).cloned())
    };
    let estimate = match name {
        // HTML escaping makes at most 6 bytes of one (`"` → `&quot;`), URL encoding 3, case
        // changes 3 (`ß` → `SS`, `ΐ` → three characters); `pprint` indents nested values.
        "escape" | "e" | "urlencode" | "lower" | "upper" | "title" | "capitalize" | "pprint" => {
            input().saturating_mul(6)
        }
        "string" | "join" | "list" => {
            let separator = arg(1, "d").map_or(0, |s| weight(&s, cap));
            let items = args.first().and_then(Value::len).unwrap_or(0);
            input().saturating_add(separator.saturating_mul(items))
        }
        "indent" => {
            let text = args.first().map_or(0, |v| weight(v, cap));
            let lines = args
                .first()
                .and_then(Value::as_str)
                .map_or(1, |s| s.matches('\n').count() + 1);
            let width = arg(1, "width").map_or(4, |w| {
                w.as_usize()
                    .unwrap_or_else(|| w.as_str().map_or(0, str::len))
            });
            text.saturating_add(width.saturating_mul(lines))
        }
        "replace" => {
            let (Some(text), Some(from), Some(to)) = (
                args.first().and_then(Value::as_str),
                args.get(1).and_then(Value::as_str),
                args.get(2).and_then(Value::as_str),
            ) else {
                return Ok(());
            };
            let hits = if from.is_empty() {
                text.chars().count() + 1
            } else {
                text.matches(from).count()
            };
            text.len()
                .saturating_add(hits.saturating_mul(to.len().saturating_sub(from.len())))
        }
        "format" => {
            let spec = args.first().and_then(Value::as_str).unwrap_or_default();
            input().saturating_add(format_widths(spec))
        }
        // Both make room for `count` items (or `count` lists) before they look at the input.
        "batch" | "slice" => {
            let count = arg(1, "count").and_then(|c| c.as_usize()).unwrap_or(0);
            input().saturating_add(count.saturating_mul(24))
        }
        _ => return Ok(()),
    };
    fits(estimate)
}

/// The widths and precisions a printf-style format asks for (`%1000000000s` asks for 10⁹).
fn format_widths(spec: &str) -> usize {
    let mut total = 0usize;
    let mut chars = spec.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            continue;
        }
        let mut number = String::new();
        while let Some(&next) = chars.peek() {
            if next.is_ascii_digit() {
                number.push(next);
            } else if matches!(next, '.' | '-' | '+' | ' ' | '#' | '*') {
                if !number.is_empty() {
                    total = total.saturating_add(number.parse().unwrap_or(usize::MAX));
                    number.clear();
                }
            } else {
                break;
            }
            chars.next();
        }
        if !number.is_empty() {
            total = total.saturating_add(number.parse().unwrap_or(usize::MAX));
        }
    }
    total
}

/// minijinja folds constant expressions while it compiles (`{{ "x" * 100000000 }}` becomes one
/// 100 MB constant before any budget exists), so the syntax tree is read first and a constant
/// that would outgrow `cap` bytes refuses the template. What the tree cannot be changed in
/// (its nodes are read-only) is bounded here; everything else at run time.
fn check_constants(name: &str, source: &str, cap: usize) -> Result<(), Error> {
    use minijinja::machinery::{ast, parse};

    /// What a constant expression folds to, estimated without building it.
    #[derive(Clone, Copy)]
    struct Folded {
        bytes: usize,
        int: Option<i128>,
    }

    fn folded(expr: &ast::Expr<'_>, cap: usize) -> Option<Folded> {
        let small = |int| Some(Folded { bytes: 16, int });
        match expr {
            ast::Expr::Const(c) => Some(Folded {
                bytes: weight(&c.value, cap),
                int: c.value.as_i64().map(i128::from),
            }),
            ast::Expr::List(l) => l.as_const().map(|v| Folded {
                bytes: weight(&v, cap),
                int: None,
            }),
            ast::Expr::Map(m) => m.as_const().map(|v| Folded {
                bytes: weight(&v, cap),
                int: None,
            }),
            ast::Expr::UnaryOp(u) => {
                let inner = folded(&u.expr, cap)?;
                match u.op {
                    ast::UnaryOpKind::Neg => small(inner.int.map(|i| -i)),
                    ast::UnaryOpKind::Not => small(None),
                }
            }
            ast::Expr::Compare(c) => {
                folded(&c.expr, cap)?;
                for op in &c.ops {
                    folded(&op.expr, cap)?;
                }
                small(None)
            }
            ast::Expr::BinOp(b) => {
                let (l, r) = (folded(&b.left, cap)?, folded(&b.right, cap)?);
                use ast::BinOpKind as K;
                match b.op {
                    K::Add | K::Concat => Some(Folded {
                        bytes: l.bytes.saturating_add(r.bytes),
                        int: l.int.zip(r.int).and_then(|(a, b)| a.checked_add(b)),
                    }),
                    K::ScAnd | K::ScOr => Some(Folded {
                        bytes: l.bytes.max(r.bytes),
                        int: None,
                    }),
                    K::Mul => match (l.int, r.int) {
                        (Some(a), Some(b)) => small(a.checked_mul(b)),
                        (Some(n), None) | (None, Some(n)) => {
                            let unit = if l.int.is_some() { r.bytes } else { l.bytes };
                            let n = usize::try_from(n.max(0)).unwrap_or(usize::MAX);
                            Some(Folded {
                                bytes: unit.saturating_mul(n),
                                int: None,
                            })
                        }
                        (None, None) => small(None),
                    },
                    K::Pow => {
                        small(l.int.zip(r.int).and_then(|(a, b)| {
                            u32::try_from(b).ok().and_then(|b| a.checked_pow(b))
                        }))
                    }
                    K::Sub => small(l.int.zip(r.int).and_then(|(a, b)| a.checked_sub(b))),
                    _ => small(None),
                }
            }
            _ => None,
        }
    }

    fn exprs<'e, 'a>(stmt: &'e ast::Stmt<'a>, out: &mut Vec<&'e ast::Expr<'a>>) {
        use ast::Stmt as S;
        let body = |stmts: &'e [ast::Stmt<'a>], out: &mut Vec<&'e ast::Expr<'a>>| {
            for s in stmts {
                exprs(s, out);
            }
        };
        match stmt {
            S::Template(t) => body(&t.children, out),
            S::EmitExpr(e) => out.push(&e.expr),
            S::ForLoop(f) => {
                out.extend([&f.target, &f.iter]);
                out.extend(f.filter_expr.as_ref());
                body(&f.body, out);
                body(&f.else_body, out);
            }
            S::IfCond(i) => {
                out.push(&i.expr);
                body(&i.true_body, out);
                body(&i.false_body, out);
            }
            S::WithBlock(w) => {
                for (target, value) in &w.assignments {
                    out.extend([target, value]);
                }
                body(&w.body, out);
            }
            S::Set(set) => out.extend([&set.target, &set.expr]),
            S::SetBlock(set) => {
                out.push(&set.target);
                out.extend(set.filter.as_ref());
                body(&set.body, out);
            }
            S::AutoEscape(a) => {
                out.push(&a.enabled);
                body(&a.body, out);
            }
            S::FilterBlock(f) => {
                out.push(&f.filter);
                body(&f.body, out);
            }
            S::Block(b) => body(&b.body, out),
            S::Extends(e) => out.push(&e.name),
            S::Include(i) => out.push(&i.name),
            S::Import(i) => out.extend([&i.expr, &i.name]),
            S::FromImport(i) => out.push(&i.expr),
            S::Macro(m) => {
                out.extend(m.args.iter().chain(&m.defaults));
                body(&m.body, out);
            }
            S::CallBlock(c) => {
                out.push(&c.call.expr);
                call_args(&c.call.args, out);
                out.extend(c.macro_decl.args.iter().chain(&c.macro_decl.defaults));
                body(&c.macro_decl.body, out);
            }
            S::Do(d) => {
                out.push(&d.call.expr);
                call_args(&d.call.args, out);
            }
            S::EmitRaw(_) => {}
        }
    }

    fn call_args<'e, 'a>(args: &'e [ast::CallArg<'a>], out: &mut Vec<&'e ast::Expr<'a>>) {
        for arg in args {
            match arg {
                ast::CallArg::Pos(e)
                | ast::CallArg::Kwarg(_, e)
                | ast::CallArg::PosSplat(e)
                | ast::CallArg::KwargSplat(e) => out.push(e),
            }
        }
    }

    /// An expression and every expression inside it (each is folded on its own if it can be).
    fn nested<'e, 'a>(expr: &'e ast::Expr<'a>, out: &mut Vec<&'e ast::Expr<'a>>) {
        use ast::Expr as E;
        out.push(expr);
        let mut inner = |e: &'e ast::Expr<'a>| nested(e, out);
        match expr {
            E::Var(_) | E::Const(_) => {}
            E::Slice(s) => {
                inner(&s.expr);
                for e in [&s.start, &s.stop, &s.step].into_iter().flatten() {
                    inner(e);
                }
            }
            E::UnaryOp(u) => inner(&u.expr),
            E::BinOp(b) => {
                inner(&b.left);
                inner(&b.right);
            }
            E::Compare(c) => {
                inner(&c.expr);
                for op in &c.ops {
                    inner(&op.expr);
                }
            }
            E::IfExpr(i) => {
                inner(&i.test_expr);
                inner(&i.true_expr);
                if let Some(e) = &i.false_expr {
                    inner(e);
                }
            }
            E::Filter(f) => {
                if let Some(e) = &f.expr {
                    inner(e);
                }
                let mut args = Vec::new();
                call_args(&f.args, &mut args);
                args.into_iter().for_each(inner);
            }
            E::Test(t) => {
                inner(&t.expr);
                let mut args = Vec::new();
                call_args(&t.args, &mut args);
                args.into_iter().for_each(inner);
            }
            E::GetAttr(g) => inner(&g.expr),
            E::GetItem(g) => {
                inner(&g.expr);
                inner(&g.subscript_expr);
            }
            E::Call(c) => {
                inner(&c.expr);
                let mut args = Vec::new();
                call_args(&c.args, &mut args);
                args.into_iter().for_each(inner);
            }
            E::List(l) => l.items.iter().for_each(inner),
            E::Map(m) => m.keys.iter().chain(&m.values).for_each(inner),
        }
    }

    let tree = parse(source, name, Default::default(), Default::default())?;
    let mut top = Vec::new();
    exprs(&tree, &mut top);
    let mut all = Vec::new();
    for expr in top {
        nested(expr, &mut all);
    }
    for expr in all {
        if folded(expr, cap).is_some_and(|f| f.bytes > cap) {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                "a constant in the template is larger than a message may build",
            ));
        }
    }
    Ok(())
}

/// Compiles `source` with its building operators turned into the bounded functions above and its
/// raw text written through the formatter, so that every byte it writes is charged.
fn compile<'s>(
    name: &'s str,
    source: &'s str,
    auto_escape: AutoEscape,
) -> Result<CompiledTemplate<'s>, Error> {
    let config = TemplateConfig {
        syntax_config: Default::default(),
        ws_config: Default::default(),
        default_auto_escape: std::sync::Arc::new(move |_: &str| auto_escape),
    };
    let mut compiled = CompiledTemplate::new(name, source, &config)?;
    compiled.instructions = bounded(&compiled.instructions);
    for block in compiled.blocks.values_mut() {
        *block = bounded(block);
    }
    Ok(compiled)
}

/// The same program, but `+`, `*` and `~` call [`ADD`], [`MUL`] and [`CONCAT`], and raw text is
/// loaded as a safe string and emitted (`EmitRaw` would write it past the formatter, uncharged:
/// raw text in a loop captured by `{% set %}` could otherwise grow without bound). Jump targets
/// move with the instructions they point at.
fn bounded<'s>(old: &Instructions<'s>) -> Instructions<'s> {
    let len = u32::try_from(old.len()).unwrap_or(u32::MAX);
    let mut moved = Vec::with_capacity(old.len() + 1);
    let mut next = 0u32;
    for i in 0..len {
        moved.push(next);
        next += match old.get(i) {
            Some(Instruction::EmitRaw(_)) => 2,
            _ => 1,
        };
    }
    moved.push(next);
    let to = |target: u32| moved.get(target as usize).copied().unwrap_or(next);

    let mut new = Instructions::new(old.name(), old.source());
    for i in 0..len {
        let Some(instruction) = old.get(i) else {
            continue;
        };
        let mut add = |instruction: Instruction<'s>| match (old.get_span(i), old.get_line(i)) {
            (Some(span), _) => new.add_with_span(instruction, span),
            (None, Some(line)) => {
                new.add_with_line(instruction, u16::try_from(line).unwrap_or(u16::MAX))
            }
            (None, None) => new.add(instruction),
        };
        let call = |function| Instruction::CallFunction(function, Some(2));
        match instruction {
            Instruction::EmitRaw(text) => {
                add(Instruction::LoadConst(Value::from_safe_string(
                    (*text).to_owned(),
                )));
                add(Instruction::Emit);
                continue;
            }
            Instruction::Add => add(call(ADD)),
            Instruction::Mul => add(call(MUL)),
            Instruction::StringConcat => add(call(CONCAT)),
            Instruction::Slice => add(Instruction::CallFunction(SLICE, Some(4))),
            Instruction::Jump(t) => add(Instruction::Jump(to(*t))),
            Instruction::JumpIfFalse(t) => add(Instruction::JumpIfFalse(to(*t))),
            Instruction::JumpIfFalseOrPop(t) => add(Instruction::JumpIfFalseOrPop(to(*t))),
            Instruction::JumpIfTrueOrPop(t) => add(Instruction::JumpIfTrueOrPop(to(*t))),
            Instruction::Iterate(t) => add(Instruction::Iterate(to(*t))),
            Instruction::BuildMacro(name, start, flags) => {
                add(Instruction::BuildMacro(name, to(*start), *flags))
            }
            other => add(other.clone()),
        };
    }
    new
}

/// A user template compiled with bounded operators, ready to render within its part's limit.
pub struct Bounded<'s> {
    compiled: CompiledTemplate<'s>,
    auto_escape: AutoEscape,
    limit: PartLimit,
}

impl fmt::Debug for Bounded<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bounded")
            .field("limit", &self.limit)
            .finish()
    }
}

impl<'s> Bounded<'s> {
    pub fn compile(
        name: &'s str,
        source: &'s str,
        auto_escape: AutoEscape,
        limit: PartLimit,
    ) -> Result<Self, RenderFailure> {
        if let Err(e) = check_constants(name, source, limit.budget()) {
            return Err(match e.kind() {
                ErrorKind::InvalidOperation => RenderFailure::Exceeded(Exceeded {
                    limit,
                    what: Bound::Built,
                }),
                _ => RenderFailure::Template(e),
            });
        }
        Ok(Self {
            compiled: compile(name, source, auto_escape).map_err(RenderFailure::Template)?,
            auto_escape,
            limit,
        })
    }

    /// Renders with `context` in `env`, which must have had [`install`] and [`emit`] applied.
    pub fn render(&self, env: &Environment<'_>, context: Value) -> Result<String, RenderFailure> {
        let limit = self.limit;
        let budget = Charging::start(limit);
        let mut rendered = String::new();
        let result = Vm::new(env)
            .eval(
                &self.compiled.instructions,
                context,
                &self.compiled.blocks,
                &mut minijinja::machinery::make_string_output(&mut rendered),
                self.auto_escape,
            )
            .map(|_| ());
        if let Some(exceeded) = budget.finish() {
            return Err(RenderFailure::Exceeded(exceeded));
        }
        result.map_err(|e| match e.kind() {
            ErrorKind::OutOfFuel => RenderFailure::Exceeded(Exceeded {
                limit,
                what: Bound::Steps(env.fuel().unwrap_or(FUEL)),
            }),
            _ => RenderFailure::Template(e),
        })?;
        if rendered.len() > limit.max_bytes || rendered.chars().count() > limit.max_chars {
            return Err(RenderFailure::Exceeded(Exceeded {
                limit,
                what: Bound::Output,
            }));
        }
        Ok(rendered)
    }
}

/// Why a bounded rendering failed: the template itself, or a limit.
#[derive(Debug)]
pub enum RenderFailure {
    Template(Error),
    Exceeded(Exceeded),
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::domain::Channel;
    use crate::domain::template::{TemplateContent, VariableDecl};
    use crate::rendering::{RenderError, Renderer};

    fn template(body: &str) -> TemplateContent {
        TemplateContent {
            subject: Some("Hi".into()),
            body: body.to_owned(),
            variables: vec![VariableDecl::text("guest_name", "Ada")],
            brand_assets: BTreeMap::new(),
            design_settings: BTreeMap::new(),
            whatsapp: None,
        }
    }

    fn render(channel: Channel, body: &str, guest_name: &str) -> Result<String, RenderError> {
        let variables = BTreeMap::from([("guest_name".to_owned(), guest_name.into())]);
        Renderer::new()
            .render(channel, &template(body), &variables, &BTreeMap::new())
            .map(|r| r.body)
    }

    fn assert_too_large(channel: Channel, body: &str, guest_name: &str) {
        match render(channel, body, guest_name) {
            Err(RenderError::TooLarge { part: "body", .. }) => {}
            other => panic!("{body:?} on {channel}: {other:?}"),
        }
    }

    const CHANNELS: [Channel; 4] = [
        Channel::Email,
        Channel::Sms,
        Channel::Whatsapp,
        Channel::InApp,
    ];

    /// The templates the hardening issue found stalling or exhausting a function, and their
    /// cousins: every one stops with a limit error on every channel.
    #[test]
    fn templates_that_build_too_much_stop_at_the_limit() {
        let long_name = "n".repeat(10_000);
        let hostile = [
            r#"{{ "x" * 100000000 }}"#,
            r#"{{ ("a\n" * 2000)|indent(2000000) }}"#,
            r#"{{ "%1000000000s"|format("x") }}"#,
            "{% for i in range(100000) %}{{ guest_name }}{% endfor %}",
            r#"{% set a = guest_name %}{% set a = a ~ a %}{% set a = a ~ a %}{% set a = a ~ a %}{% set a = a ~ a %}{% set a = a ~ a %}{% set a = a ~ a %}{% set a = a ~ a %}{% set a = a ~ a %}{% set a = a ~ a %}{% set a = a ~ a %}{{ a|length }}"#,
            r#"{% set ns = namespace(a=guest_name) %}{% for i in range(64) %}{% set ns.a = ns.a + ns.a %}{% endfor %}{{ ns.a|length }}"#,
            r#"{% set ns = namespace(l=[1]) %}{% for i in range(64) %}{% set ns.l = ns.l + ns.l %}{% endfor %}{{ ns.l|length }}"#,
            r#"{% macro d(s, n) %}{% if n %}{{ d(s ~ s, n - 1) }}{% else %}{{ s|length }}{% endif %}{% endmacro %}{{ d(guest_name, 64) }}"#,
            r#"{{ ([guest_name] * 100000000)|list|length }}"#,
            r#"{{ [guest_name] * 100000000 }}"#,
            r#"{{ (guest_name * 100)|replace("n", guest_name) }}"#,
            r#"{% set a = guest_name * 10 %}{{ [a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a]|join }}"#,
            r#"{% set a = guest_name * 10 %}{{ [a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a]|string|length }}"#,
            r#"{{ (guest_name * 100)|urlencode|urlencode|urlencode|length }}"#,
            // Constants folded while compiling, before any budget exists.
            r#"{{ (("x" * 100000000) ~ ("y" * 100000000) ~ ("z" * 100000000))|length }}"#,
            r#"{{ ("x" * (10 ** 8))|length }}"#,
            r#"{% if false %}{{ ["x" * 50000000, 1] }}{% endif %}{{ guest_name }}"#,
            // Filters that make room for their count before looking at their input.
            r#"{{ [1]|batch(100000000000) }}"#,
            r#"{{ [1]|slice(100000000000) }}"#,
            r#"{{ [1]|batch(9223372036854775807) }}"#,
            r#"{{ [1]|batch(50000000, 0)|length }}"#,
        ];
        // Slices copy what they keep: 300 reversed copies of a 10,000-character name.
        let slices = format!(
            "{{% set l = [{}] %}}{{{{ l|length }}}}",
            vec!["guest_name[::-1]"; 300].join(", ")
        );
        for channel in CHANNELS {
            for body in hostile.iter().copied().chain([slices.as_str()]) {
                assert_too_large(channel, body, &long_name);
            }
        }
        // Raw text repeated by a loop, captured so that only its length is written.
        let raw = format!(
            "{{% set x %}}{{% for i in range(100000) %}}{}{{% endfor %}}{{% endset %}}{{{{ x|length }}}}",
            "r".repeat(2_000)
        );
        for channel in CHANNELS {
            match render(channel, &raw, "Ada") {
                Err(RenderError::TooLarge { .. }) => {}
                other => panic!("raw text loop on {channel}: {other:?}"),
            }
        }
    }

    #[test]
    fn each_channel_has_its_own_output_limit() {
        let body = r#"{{ "x" * n }}"#.replace("n", "1601");
        assert_too_large(Channel::Sms, &body, "Ada");
        assert!(render(Channel::Whatsapp, &body, "Ada").is_ok());
        let body = r#"{{ "é" * 1600 }}"#;
        assert_eq!(
            render(Channel::Sms, body, "Ada").map(|b| b.chars().count()),
            Ok(1600),
            "the SMS limit counts characters"
        );
        assert_too_large(Channel::Whatsapp, r#"{{ "x" * 4097 }}"#, "Ada");
        assert_too_large(Channel::InApp, r#"{{ "x" * 4097 }}"#, "Ada");
        assert!(render(Channel::Email, r#"{{ "x" * 102400 }}"#, "Ada").is_ok());
        assert_too_large(Channel::Email, r#"{{ "x" * 102401 }}"#, "Ada");
        let mut c = template("Hi");
        c.subject = Some(r#"{{ "s" * 999 }}"#.into());
        let err = Renderer::new().render(
            Channel::Email,
            &c,
            &BTreeMap::from([("guest_name".to_owned(), "Ada".into())]),
            &BTreeMap::new(),
        );
        assert!(
            matches!(
                err,
                Err(RenderError::TooLarge {
                    part: "subject",
                    ..
                })
            ),
            "{err:?}"
        );
        let message = err.map_err(|e| e.to_string()).err().unwrap_or_default();
        assert!(message.contains("998 characters"), "{message}");
    }

    /// What real templates do keeps working: arithmetic, concatenation, filters, loops.
    #[test]
    fn ordinary_templates_are_untouched() {
        let body = r#"{% set total = 3 * 4 + 1 %}{{ guest_name ~ "!" }} {{ total }} {{ 2.5 * 2 }} {{ "-" * 3 }} {{ [1, 2] + [3] }} {{ "a" + "b" }} {{ guest_name|upper|replace("A", "a") }} {{ "%s has %d seats"|format(guest_name, 2) }} {{ ["x", "y"]|join(", ") }} {% for i in range(3) %}{{ loop.index }}{% endfor %} {{ "line\nnext"|indent(2) }} {{ {"k": 1}|items|list }}"#;
        assert_eq!(
            render(Channel::Sms, body, "Ada"),
            Ok("Ada! 13 5.0 --- [1, 2, 3] ab aDa Ada has 2 seats x, y 123 line\n  next [[\"k\", 1]]".into())
        );
        let escaped = render(
            Channel::Email,
            "<p>{{ guest_name ~ '<b>' }} {{ [guest_name] }}</p>",
            "A&B",
        );
        assert_eq!(
            escaped,
            Ok("<p>A&amp;B&lt;b&gt; [&quot;A&amp;B&quot;]</p>".into())
        );
    }

    /// The rewritten program does what minijinja's own does: jumps, loops (recursive ones too),
    /// macros with `caller`, blocks that capture, raw text everywhere.
    #[test]
    fn the_rewritten_program_renders_as_minijinja_does() {
        let templates = [
            "a{% if guest_name %}b{% else %}c{% endif %}d",
            "{% for x in [1, 2, 3] %}<{{ x }}>{% if loop.last %}!{% endif %}{% else %}none{% endfor %}.",
            "{% for x in [] %}x{% else %}empty{% endfor %} after",
            "{% macro m(a) %}[{{ a }}{{ caller() if caller else '' }}]{% endmacro %}{{ m(1) }} {% call m(2) %}in{% endcall %}",
            "{% for item in [{'c': [{'c': []}]}, {'c': []}] recursive %}<{% if item.c %}{{ loop(item.c) }}{% endif %}>{% endfor %}",
            "{% set x %}raw {{ guest_name }} raw{% endset %}{{ x|upper }} {% filter lower %}ABC {{ guest_name }}{% endfilter %}",
            "{{ guest_name if guest_name else 'x' }} {{ 1 and 2 or 3 }} {{ none or 'y' }} {{ [1, 2] + [3] }} {{ 'a' ~ 1 ~ none }}",
            "{% with a = 2 * 3 %}{{ a }}{% endwith %}{{ loop_var|default('d') }}",
            "{% for i in range(3) %}{{ loop.cycle('x', 'y') }}{% if loop.changed(i) %}c{% endif %}{% endfor %}",
        ];
        for source in templates {
            let mut plain = Environment::new();
            plain.set_undefined_behavior(minijinja::UndefinedBehavior::Lenient);
            let expected = plain
                .render_str(source, minijinja::context! { guest_name => "Ada" })
                .map_err(|e| e.to_string());
            assert!(expected.is_ok(), "{source}: {expected:?}");
            let bounded = Bounded::compile(
                "t.txt",
                source,
                AutoEscape::None,
                crate::rendering::limits::SMS,
            )
            .map_err(|e| format!("{e:?}"));
            let mut env = Environment::new();
            env.set_undefined_behavior(minijinja::UndefinedBehavior::Lenient);
            env.set_formatter(emit);
            install(&mut env);
            let got = bounded.and_then(|b| {
                b.render(
                    &env,
                    minijinja::Value::from_serialize(minijinja::context! { guest_name => "Ada" }),
                )
                .map_err(|e| format!("{e:?}"))
            });
            assert_eq!(got, expected, "{source}");
        }
    }

    #[test]
    fn debug_is_not_available_and_slicing_still_works() {
        assert!(matches!(
            render(Channel::Sms, "{{ debug() }}", "Ada"),
            Err(RenderError::Undeclared { .. })
        ));
        assert_eq!(
            render(
                Channel::Sms,
                "{{ guest_name[::-1] }} {{ guest_name[1:] }} {{ [1, 2, 3][:2] }}",
                "Ada"
            ),
            Ok("adA da [1, 2]".into())
        );
        let undefined = render(Channel::Sms, "{{ guest_name.nothing[1:] }}", "Ada");
        assert!(
            matches!(undefined, Err(RenderError::Render { .. })),
            "{undefined:?}"
        );
    }

    /// A rendering that fails leaves no budget behind on its thread.
    #[test]
    fn the_budget_ends_with_its_rendering() {
        let _ = render(Channel::Sms, r#"{{ "x" * 5000 }}"#, "Ada");
        assert!(BUDGET.with_borrow(Option::is_none));
        assert_eq!(left(), usize::MAX);
    }

    #[test]
    fn format_widths_are_read() {
        assert_eq!(format_widths("%s and %d"), 0);
        assert_eq!(format_widths("%10s|%-5d|%.3f|%08.2f"), 10 + 5 + 3 + 8 + 2);
        assert_eq!(format_widths("%1000000000s"), 1_000_000_000);
        assert_eq!(format_widths("%99999999999999999999999s"), usize::MAX);
    }
}
