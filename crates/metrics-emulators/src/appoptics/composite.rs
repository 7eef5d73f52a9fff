//! Composite metric expressions: a parser and an evaluator for the functions the AppOptics
//! documentation and the Python library's README use.
//!
//! `s("metric", "*" | {"tag": "pattern", ..}, {function: "mean", period: "3600"})` selects a
//! metric's streams (`function` summarizes each bucket, `period` widens the buckets);
//! `sum`, `mean` (`average`), `min`, `max`, `count` combine every series per point into one;
//! `derive(e, {detect_reset: "true"})` is the change between points; `divide([a, b])`,
//! `multiply([a, b])` and `subtract([a, b])` combine two sets of series point by point
//! (matched by tags, or one against many); `scale(e, {factor: "2"})` and `abs(e)` map values.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::state::{State, TagFilter, TagKey, bucketize};

/// A parsed expression.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Expr {
    Call(String, Vec<Expr>),
    Str(String),
    Num(f64),
    Ident(String),
    Obj(Vec<(String, Expr)>),
    List(Vec<Expr>),
}

impl Expr {
    fn text(&self) -> Option<String> {
        match self {
            Self::Str(s) | Self::Ident(s) => Some(s.clone()),
            Self::Num(n) => Some(n.to_string()),
            _ => None,
        }
    }
}

struct Parser<'a> {
    chars: Vec<char>,
    at: usize,
    source: &'a str,
}

/// Parses an expression.
pub(crate) fn parse(source: &str) -> Result<Expr, String> {
    let mut parser = Parser {
        chars: source.chars().collect(),
        at: 0,
        source,
    };
    let expr = parser.expr()?;
    parser.skip_ws();
    if parser.at < parser.chars.len() {
        return Err(parser.error("unexpected text after the expression"));
    }
    Ok(expr)
}

impl Parser<'_> {
    fn error(&self, what: &str) -> String {
        format!("{what} at character {} of `{}`", self.at + 1, self.source)
    }

    fn skip_ws(&mut self) {
        while self.chars.get(self.at).is_some_and(|c| c.is_whitespace()) {
            self.at += 1;
        }
    }

    fn peek(&mut self) -> Option<char> {
        self.skip_ws();
        self.chars.get(self.at).copied()
    }

    fn expect(&mut self, c: char) -> Result<(), String> {
        if self.peek() == Some(c) {
            self.at += 1;
            Ok(())
        } else {
            Err(self.error(&format!("expected `{c}`")))
        }
    }

    fn expr(&mut self) -> Result<Expr, String> {
        match self.peek() {
            Some('"' | '\'') => self.string().map(Expr::Str),
            Some('{') => self.object(),
            Some('[') => {
                self.at += 1;
                let items = self.list_until(']')?;
                Ok(Expr::List(items))
            }
            Some(c) if c.is_ascii_digit() || c == '-' || c == '.' => self.number(),
            Some(c) if c.is_ascii_alphabetic() || c == '_' => {
                let name = self.ident();
                if self.peek() == Some('(') {
                    self.at += 1;
                    let args = self.list_until(')')?;
                    Ok(Expr::Call(name.to_ascii_lowercase(), args))
                } else {
                    Ok(Expr::Ident(name))
                }
            }
            _ => Err(self.error("expected an expression")),
        }
    }

    fn list_until(&mut self, close: char) -> Result<Vec<Expr>, String> {
        let mut items = Vec::new();
        if self.peek() == Some(close) {
            self.at += 1;
            return Ok(items);
        }
        loop {
            items.push(self.expr()?);
            match self.peek() {
                Some(',') => self.at += 1,
                Some(c) if c == close => {
                    self.at += 1;
                    return Ok(items);
                }
                _ => return Err(self.error(&format!("expected `,` or `{close}`"))),
            }
        }
    }

    fn ident(&mut self) -> String {
        let start = self.at;
        while self
            .chars
            .get(self.at)
            .is_some_and(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '.')
        {
            self.at += 1;
        }
        self.chars[start..self.at].iter().collect()
    }

    fn string(&mut self) -> Result<String, String> {
        let quote = self.chars[self.at];
        self.at += 1;
        let mut out = String::new();
        while let Some(&c) = self.chars.get(self.at) {
            self.at += 1;
            match c {
                '\\' => {
                    if let Some(&next) = self.chars.get(self.at) {
                        out.push(next);
                        self.at += 1;
                    }
                }
                c if c == quote => return Ok(out),
                c => out.push(c),
            }
        }
        Err(self.error("unterminated string"))
    }

    fn number(&mut self) -> Result<Expr, String> {
        let start = self.at;
        while self
            .chars
            .get(self.at)
            .is_some_and(|c| c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E'))
        {
            self.at += 1;
        }
        let text: String = self.chars[start..self.at].iter().collect();
        text.parse()
            .map(Expr::Num)
            .map_err(|_| self.error(&format!("`{text}` is not a number")))
    }

    fn object(&mut self) -> Result<Expr, String> {
        self.expect('{')?;
        let mut pairs = Vec::new();
        if self.peek() == Some('}') {
            self.at += 1;
            return Ok(Expr::Obj(pairs));
        }
        loop {
            let key = match self.peek() {
                Some('"' | '\'') => self.string()?,
                Some(c) if c.is_ascii_alphabetic() || c == '_' => self.ident(),
                _ => return Err(self.error("expected an object key")),
            };
            self.expect(':')?;
            let value = self.expr()?;
            pairs.push((key, value));
            match self.peek() {
                Some(',') => self.at += 1,
                Some('}') => {
                    self.at += 1;
                    return Ok(Expr::Obj(pairs));
                }
                _ => return Err(self.error("expected `,` or `}`")),
            }
        }
    }
}

/// The metric a series came from.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct SourceMetric {
    pub(crate) name: String,
    pub(crate) metric_type: String,
    pub(crate) attributes: Map<String, Value>,
    pub(crate) period: Option<i64>,
}

/// One result series.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Series {
    pub(crate) tags: TagKey,
    pub(crate) points: BTreeMap<i64, f64>,
    pub(crate) metric: Option<SourceMetric>,
    /// The tag filter of the `s()` this came from (legacy answer's `query`).
    pub(crate) query_tags: Vec<(String, String)>,
}

/// Evaluation settings.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Window {
    pub(crate) start: i64,
    pub(crate) end: i64,
    pub(crate) resolution: i64,
}

const MAX_DEPTH: usize = 16;

/// Evaluates an expression against the stored data.
pub(crate) fn evaluate(expr: &Expr, state: &State, window: Window) -> Result<Vec<Series>, String> {
    eval(expr, state, window, 0)
}

fn options(expr: Option<&Expr>) -> BTreeMap<String, String> {
    match expr {
        Some(Expr::Obj(pairs)) => pairs
            .iter()
            .filter_map(|(k, v)| v.text().map(|v| (k.to_ascii_lowercase(), v)))
            .collect(),
        _ => BTreeMap::new(),
    }
}

fn eval(expr: &Expr, state: &State, window: Window, depth: usize) -> Result<Vec<Series>, String> {
    if depth > MAX_DEPTH {
        return Err("the expression nests too deeply".to_owned());
    }
    let Expr::Call(function, args) = expr else {
        return Err("expected a function call such as s(\"metric\", \"*\")".to_owned());
    };
    let arg = |i: usize| -> Result<Vec<Series>, String> {
        let expr = args
            .get(i)
            .ok_or_else(|| format!("{function}() needs an argument"))?;
        eval(expr, state, window, depth + 1)
    };
    match function.as_str() {
        "s" => select(args, state, window, depth),
        "sum" | "mean" | "average" | "min" | "max" | "count" => Ok(combine(&arg(0)?, function)),
        "derive" => {
            let reset = options(args.get(1))
                .get("detect_reset")
                .is_some_and(|v| v == "true");
            Ok(arg(0)?
                .into_iter()
                .map(|mut series| {
                    let mut previous: Option<f64> = None;
                    let mut points = BTreeMap::new();
                    for (time, value) in &series.points {
                        if let Some(before) = previous {
                            let change = value - before;
                            points.insert(
                                *time,
                                if reset && change < 0.0 {
                                    *value
                                } else {
                                    change
                                },
                            );
                        }
                        previous = Some(*value);
                    }
                    series.points = points;
                    series
                })
                .collect())
        }
        "scale" => {
            let factor: f64 = options(args.get(1))
                .get("factor")
                .ok_or("scale() needs {factor: \"…\"}")?
                .parse()
                .map_err(|_| "scale(): the factor is not a number".to_owned())?;
            Ok(map_values(arg(0)?, |v| v * factor))
        }
        "abs" => Ok(map_values(arg(0)?, f64::abs)),
        "divide" | "multiply" | "subtract" => {
            let Some(Expr::List(pair)) = args.first() else {
                return Err(format!(
                    "{function}() takes a list of two expressions: {function}([a, b])"
                ));
            };
            if pair.len() != 2 {
                return Err(format!("{function}() takes exactly two expressions"));
            }
            let left = eval(&pair[0], state, window, depth + 1)?;
            let right = eval(&pair[1], state, window, depth + 1)?;
            let op = |a: f64, b: f64| match function.as_str() {
                "divide" => (b != 0.0).then(|| a / b),
                "multiply" => Some(a * b),
                _ => Some(a - b),
            };
            Ok(binary(&left, &right, op))
        }
        other => Err(format!("unknown function `{other}`")),
    }
}

fn select(
    args: &[Expr],
    state: &State,
    window: Window,
    depth: usize,
) -> Result<Vec<Series>, String> {
    let metric = args
        .first()
        .and_then(Expr::text)
        .ok_or("s() needs a metric name")?;
    let (filter, query_tags) = match args.get(1) {
        None => (TagFilter::default(), Vec::new()),
        Some(Expr::Str(s) | Expr::Ident(s)) if s == "*" => (TagFilter::default(), Vec::new()),
        // A legacy source pattern.
        Some(Expr::Str(source)) => {
            let pairs = vec![("source".to_owned(), source.clone())];
            (TagFilter::from_pairs(&pairs), pairs)
        }
        Some(Expr::Obj(pairs)) => {
            let mut flat = Vec::new();
            for (name, value) in pairs {
                match value {
                    Expr::List(values) => flat.extend(
                        values
                            .iter()
                            .filter_map(Expr::text)
                            .map(|v| (name.clone(), v)),
                    ),
                    other => flat.push((
                        name.clone(),
                        other.text().ok_or("s(): tag values must be strings")?,
                    )),
                }
            }
            (TagFilter::from_pairs(&flat), flat)
        }
        Some(_) => return Err("s(): the second argument is \"*\" or a tag object".to_owned()),
    };
    let opts = options(args.get(2));
    let function = match opts.get("function").map(String::as_str) {
        None | Some("mean" | "average") => "mean",
        Some(f @ ("sum" | "min" | "max" | "count")) => f,
        Some(other) => return Err(format!("s(): unknown function `{other}`")),
    };
    let period = match opts.get("period") {
        Some(p) => p
            .parse::<i64>()
            .map_err(|_| format!("s(): period `{p}` is not a number of seconds"))?,
        None => window.resolution,
    };
    let resolution = period.max(window.resolution).max(1);
    let Some(record) = state.metric(&metric) else {
        return Ok(Vec::new());
    };
    if let Some(composite) = &record.composite {
        let inner = parse(composite)?;
        return eval(&inner, state, window, depth + 1);
    }
    let source = SourceMetric {
        name: record.name.clone(),
        metric_type: record.metric_type.clone(),
        attributes: record.attributes.clone(),
        period: record.period,
    };
    let mut out: Vec<Series> = record
        .streams
        .iter()
        .filter(|(tags, _)| filter.matches(tags))
        .map(|(tags, samples)| Series {
            tags: tags.clone(),
            points: bucketize(samples, window.start, window.end, resolution)
                .iter()
                .map(|(t, b)| (*t, b.summarize(function)))
                .collect(),
            metric: Some(source.clone()),
            query_tags: query_tags.clone(),
        })
        .filter(|s| !s.points.is_empty())
        .collect();
    out.sort_by(|a, b| a.tags.cmp(&b.tags));
    Ok(out)
}

fn common_tags(series: &[Series]) -> TagKey {
    let Some(first) = series.first() else {
        return Vec::new();
    };
    first
        .tags
        .iter()
        .filter(|pair| series.iter().all(|s| s.tags.contains(pair)))
        .cloned()
        .collect()
}

fn combine(series: &[Series], function: &str) -> Vec<Series> {
    if series.is_empty() {
        return Vec::new();
    }
    let mut per_time: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
    for s in series {
        for (time, value) in &s.points {
            per_time.entry(*time).or_default().push(*value);
        }
    }
    let points = per_time
        .into_iter()
        .map(|(time, values)| {
            #[allow(clippy::cast_precision_loss, reason = "series counts are small")]
            let n = values.len() as f64;
            let value = match function {
                "sum" => values.iter().sum(),
                "min" => values.iter().copied().fold(f64::INFINITY, f64::min),
                "max" => values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                "count" => n,
                _ => values.iter().sum::<f64>() / n,
            };
            (time, value)
        })
        .collect();
    vec![Series {
        tags: common_tags(series),
        points,
        metric: series[0].metric.clone(),
        query_tags: series[0].query_tags.clone(),
    }]
}

fn map_values(series: Vec<Series>, f: impl Fn(f64) -> f64) -> Vec<Series> {
    series
        .into_iter()
        .map(|mut s| {
            for value in s.points.values_mut() {
                *value = f(*value);
            }
            s
        })
        .collect()
}

fn binary(left: &[Series], right: &[Series], op: impl Fn(f64, f64) -> Option<f64>) -> Vec<Series> {
    let apply = |a: &Series, b: &Series| {
        let points = a
            .points
            .iter()
            .filter_map(|(t, x)| b.points.get(t).and_then(|y| op(*x, *y)).map(|v| (*t, v)))
            .collect();
        Series {
            tags: a.tags.clone(),
            points,
            metric: a.metric.clone(),
            query_tags: a.query_tags.clone(),
        }
    };
    match (left.len(), right.len()) {
        (_, 1) => left.iter().map(|a| apply(a, &right[0])).collect(),
        (1, _) => right
            .iter()
            .map(|b| {
                let mut s = apply(&left[0], b);
                s.tags.clone_from(&b.tags);
                s
            })
            .collect(),
        _ => left
            .iter()
            .filter_map(|a| right.iter().find(|b| b.tags == a.tags).map(|b| apply(a, b)))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::appoptics::state::Sample;

    fn state() -> State {
        let mut state = State::default();
        for (host, values) in [("a", [1.0, 2.0, 4.0]), ("b", [10.0, 20.0, 40.0])] {
            for (i, v) in values.iter().enumerate() {
                let time = 600 + 60 * i64::try_from(i).unwrap();
                state.store(
                    "cpu",
                    vec![("host".into(), host.into())],
                    Sample::value(time, *v),
                );
            }
        }
        state
    }

    fn run(expr: &str) -> Vec<Series> {
        let window = Window {
            start: 0,
            end: 10_000,
            resolution: 60,
        };
        evaluate(&parse(expr).unwrap(), &state(), window).unwrap()
    }

    #[test]
    fn parses_the_documented_forms() {
        for expr in [
            r#"mean(s("temperature", "*", {function: "mean", period: "3600"}))"#,
            r#"sum(s("humidity", "*"))"#,
            r#"derive(s("librato.disk.disk_ops.read", {"host":"host-1"}), {detect_reset: "true"})"#,
            r#"divide([sum(s("a",{"environment":"*"})),sum(s("b",{"environment":"*"}))])"#,
            r#"s("librato.cpu.percent.user", {"environment" : "prod", "service": "api"})"#,
        ] {
            parse(expr).unwrap();
        }
        assert!(parse("s(\"x\"").is_err());
        assert!(parse("s(\"x\") y").is_err());
    }

    #[test]
    fn evaluates() {
        let all = run(r#"s("cpu", "*")"#);
        assert_eq!(all.len(), 2);
        let one = run(r#"s("cpu", {"host": "a"})"#);
        assert_eq!(
            one[0].points.values().copied().collect::<Vec<_>>(),
            vec![1.0, 2.0, 4.0]
        );
        let sum = run(r#"sum(s("cpu", "*"))"#);
        assert_eq!(sum[0].points[&660], 22.0);
        assert!(sum[0].tags.is_empty());
        let derived = run(r#"derive(s("cpu", {"host": "a"}))"#);
        assert_eq!(
            derived[0].points.values().copied().collect::<Vec<_>>(),
            vec![1.0, 2.0]
        );
        let ratio = run(r#"divide([s("cpu", {"host": "b"}), s("cpu", {"host": "a"})])"#);
        assert_eq!(ratio[0].points[&600], 10.0);
        let scaled = run(r#"scale(s("cpu", {"host": "a"}), {factor: "3"})"#);
        assert_eq!(scaled[0].points[&720], 12.0);
        let hourly = run(r#"mean(s("cpu", "*", {function: "sum", period: "3600"}))"#);
        assert_eq!(hourly[0].points[&0], 38.5);
        assert!(run(r#"s("nope", "*")"#).is_empty());
        let window = Window {
            start: 0,
            end: 1,
            resolution: 60,
        };
        assert!(evaluate(&parse("nope(s(\"cpu\"))").unwrap(), &state(), window).is_err());
    }
}
