//! Bounds on what one rendering may produce, whatever the template does. minijinja's fuel limits
//! instructions, not what they make: a single `{{ "x" * 100000000 }}`, an `indent` or a `format`
//! width, or a few self-concatenations can build hundreds of megabytes. So every rendering of a
//! user template runs with a budget of bytes: the operators that build values (`+`, `*`, `~`) are
//! compiled into calls of bounded versions, every filter is checked before it runs where its
//! output can outgrow its input (and charged after), every `{{ }}` is written through a capped
//! writer, and the fuel is lowered so that raw text repeated by loops cannot outgrow the budget
//! either. A rendering that would go past the budget or its part's limit stops with
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
    let mut shown = String::new();
    let written = match value.as_str() {
        Some(text) if escape => super::write_html_escaped(&mut Capped(&mut shown), text),
        Some(text) => Capped(&mut shown).write_str(text),
        None if escape => super::write_html_escaped(&mut Capped(&mut shown), &display(value)?),
        None => {
            shown = display(value)?;
            Ok(())
        }
    };
    written.map_err(|_| too_large())?;
    out.write_str(&shown).map_err(Error::from)
}

/// Operators compiled into calls of these functions (see [`bound_operators`]); the names cannot
/// collide with template variables, which are plain identifiers without a leading underscore.
const ADD: &str = "__herald_add";
const MUL: &str = "__herald_mul";
const CONCAT: &str = "__herald_concat";

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

/// minijinja's own `+` or `*` (number rules, sequence merging), once the sizes are checked: an
/// expression compiled once in an environment of its own, where the operators are unbounded.
fn binary(operator: Operator, a: Value, b: Value) -> Result<Value, Error> {
    use minijinja::Expression;
    use std::sync::LazyLock;
    static PLAIN: LazyLock<Environment<'static>> = LazyLock::new(Environment::new);
    static ADD: LazyLock<Result<Expression<'static, 'static>, Error>> =
        LazyLock::new(|| PLAIN.compile_expression("a + b"));
    static MUL: LazyLock<Result<Expression<'static, 'static>, Error>> =
        LazyLock::new(|| PLAIN.compile_expression("a * b"));
    let expression = match operator {
        Operator::Add => &*ADD,
        Operator::Mul => &*MUL,
    };
    expression
        .as_ref()
        .map_err(|e| Error::new(ErrorKind::InvalidOperation, e.to_string()))?
        .eval(minijinja::context! { a => a, b => b })
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

/// Compiles `source` with its building operators turned into the bounded functions above.
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
    bound_operators(&mut compiled.instructions);
    for block in compiled.blocks.values_mut() {
        bound_operators(block);
    }
    Ok(compiled)
}

fn bound_operators(instructions: &mut Instructions<'_>) {
    for i in 0..instructions.len() {
        let Ok(i) = u32::try_from(i) else { return };
        let Some(instruction) = instructions.get_mut(i) else {
            continue;
        };
        let function = match instruction {
            Instruction::Add => ADD,
            Instruction::Mul => MUL,
            Instruction::StringConcat => CONCAT,
            _ => continue,
        };
        *instruction = Instruction::CallFunction(function, Some(2));
    }
}

/// The longest raw text a loop or a macro may write again and again. Each write costs one unit
/// of fuel, so fuel × this bounds what raw text can add up to.
fn longest_repeated_text(instructions: &Instructions<'_>) -> usize {
    let len = u32::try_from(instructions.len()).unwrap_or(u32::MAX);
    let mut repeated: Vec<(u32, u32)> = Vec::new();
    for i in 0..len {
        match instructions.get(i) {
            Some(Instruction::Iterate(end)) => repeated.push((i + 1, *end)),
            Some(Instruction::BuildMacro(_, start, _)) => repeated.push((*start, i)),
            _ => {}
        }
    }
    (0..len)
        .filter(|i| repeated.iter().any(|(from, to)| (*from..*to).contains(i)))
        .filter_map(|i| match instructions.get(i) {
            Some(Instruction::EmitRaw(text)) => Some(text.len()),
            _ => None,
        })
        .max()
        .unwrap_or(0)
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
    ) -> Result<Self, Error> {
        Ok(Self {
            compiled: compile(name, source, auto_escape)?,
            auto_escape,
            limit,
        })
    }

    /// The fuel this template may burn: [`FUEL`], or less where a loop or macro writes so much
    /// raw text that fuel × that text would outgrow the budget.
    pub fn fuel(&self) -> u64 {
        let repeated = std::iter::once(&self.compiled.instructions)
            .chain(self.compiled.blocks.values())
            .map(longest_repeated_text)
            .max()
            .unwrap_or(0);
        match repeated {
            0 => FUEL,
            n => (self.limit.budget() / n).clamp(1_000, FUEL as usize) as u64,
        }
    }

    /// Renders with `context` in `env`, which must have had [`install`] and [`emit`] applied and
    /// its fuel set to [`Bounded::fuel`].
    pub fn render(&self, env: &Environment<'_>, context: Value) -> Result<String, RenderFailure> {
        let limit = self.limit;
        let previous = BUDGET.replace(Some(Budget {
            limit,
            left: limit.budget(),
            exceeded: None,
        }));
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
        let budget = BUDGET.replace(previous);
        if let Some(exceeded) = budget.and_then(|b| b.exceeded) {
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
            variables: vec![VariableDecl {
                name: "guest_name".into(),
                required: true,
                sample: "Ada".into(),
                description: None,
            }],
            brand_assets: BTreeMap::new(),
            design_settings: BTreeMap::new(),
        }
    }

    fn render(channel: Channel, body: &str, guest_name: &str) -> Result<String, RenderError> {
        let variables = BTreeMap::from([("guest_name".to_owned(), guest_name.to_owned())]);
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
        ];
        for channel in CHANNELS {
            for body in hostile {
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
            &BTreeMap::from([("guest_name".to_owned(), "Ada".to_owned())]),
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

    #[test]
    fn format_widths_are_read() {
        assert_eq!(format_widths("%s and %d"), 0);
        assert_eq!(format_widths("%10s|%-5d|%.3f|%08.2f"), 10 + 5 + 3 + 8 + 2);
        assert_eq!(format_widths("%1000000000s"), 1_000_000_000);
        assert_eq!(format_widths("%99999999999999999999999s"), usize::MAX);
    }
}
