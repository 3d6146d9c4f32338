//! Route selection as API Gateway's HTTP API does it: the most specific route wins (literal
//! segments over `{param}` over a greedy `{proxy+}`, a named method over `ANY`), then `$default`.

use std::collections::BTreeMap;

use crate::template::RouteSpec;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
    Greedy(String),
}

#[derive(Debug, Clone)]
struct Route {
    spec: RouteSpec,
    method: Option<String>,
    segments: Vec<Segment>,
}

/// The routes of one HTTP API.
#[derive(Debug, Clone)]
pub struct RouteTable {
    routes: Vec<Route>,
    default: Option<RouteSpec>,
}

/// A request's route and the path parameters it captured (percent-decoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matched<'a> {
    pub spec: &'a RouteSpec,
    pub path_parameters: BTreeMap<String, String>,
}

impl RouteTable {
    pub fn new(specs: &[RouteSpec]) -> Self {
        let mut routes = Vec::new();
        let mut default = None;
        for spec in specs {
            let Some((method, path)) = spec.route_key.split_once(' ') else {
                default = Some(spec.clone());
                continue;
            };
            let segments = split(path)
                .map(
                    |s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                        Some(name) => match name.strip_suffix('+') {
                            Some(name) => Segment::Greedy(name.to_owned()),
                            None => Segment::Param(name.to_owned()),
                        },
                        None => Segment::Literal(s.to_owned()),
                    },
                )
                .collect();
            routes.push(Route {
                spec: spec.clone(),
                method: (method != "ANY").then(|| method.to_owned()),
                segments,
            });
        }
        Self { routes, default }
    }

    pub fn specs(&self) -> impl Iterator<Item = &RouteSpec> {
        self.routes
            .iter()
            .map(|r| &r.spec)
            .chain(self.default.as_ref())
    }

    /// The route API Gateway would pick for `method` and `path` (the raw path, still encoded).
    pub fn select(&self, method: &str, path: &str) -> Option<Matched<'_>> {
        let request: Vec<&str> = split(path).collect();
        let mut best: Option<(Vec<u8>, &Route, BTreeMap<String, String>)> = None;
        for route in &self.routes {
            if route.method.as_deref().is_some_and(|m| m != method) {
                continue;
            }
            let Some((mut rank, parameters)) = matches(&route.segments, &request) else {
                continue;
            };
            rank.push(u8::from(route.method.is_some()));
            if best.as_ref().is_none_or(|(b, _, _)| rank > *b) {
                best = Some((rank, route, parameters));
            }
        }
        match best {
            Some((_, route, path_parameters)) => Some(Matched {
                spec: &route.spec,
                path_parameters,
            }),
            None => self.default.as_ref().map(|spec| Matched {
                spec,
                path_parameters: BTreeMap::new(),
            }),
        }
    }
}

fn split(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|s| !s.is_empty())
}

/// A rank (per segment: 2 literal, 1 parameter, 0 greedy; compared left to right) and the
/// captured parameters, when `segments` matches the request.
fn matches(segments: &[Segment], request: &[&str]) -> Option<(Vec<u8>, BTreeMap<String, String>)> {
    let mut rank = Vec::new();
    let mut parameters = BTreeMap::new();
    for (i, segment) in segments.iter().enumerate() {
        match segment {
            Segment::Greedy(name) => {
                // `{proxy+}` takes one or more remaining segments, and only at the end.
                let rest = request.get(i..).filter(|r| !r.is_empty())?;
                if i + 1 != segments.len() {
                    return None;
                }
                parameters.insert(name.clone(), decode(&rest.join("/")));
                rank.push(0);
                return Some((rank, parameters));
            }
            Segment::Literal(text) => {
                if request.get(i) != Some(&text.as_str()) {
                    return None;
                }
                rank.push(2);
            }
            Segment::Param(name) => {
                let value = request.get(i)?;
                parameters.insert(name.clone(), decode(value));
                rank.push(1);
            }
        }
    }
    (segments.len() == request.len()).then_some((rank, parameters))
}

/// Percent-decoding of a path segment (invalid escapes kept as they are).
pub fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push(u8::try_from(h * 16 + l).unwrap_or(b'?'));
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(route_key: &str) -> RouteSpec {
        RouteSpec {
            route_key: route_key.to_owned(),
            logical_id: "F".into(),
            function: "f".into(),
            authorizer: None,
            scopes: Vec::new(),
        }
    }

    fn key(table: &RouteTable, method: &str, path: &str) -> Option<String> {
        table.select(method, path).map(|m| m.spec.route_key.clone())
    }

    #[test]
    fn most_specific_route_wins() {
        let table = RouteTable::new(&[
            spec("ANY /{proxy+}"),
            spec("GET /pets/{id}"),
            spec("GET /pets/dog"),
            spec("ANY /pets/{id}"),
        ]);
        assert_eq!(
            key(&table, "GET", "/pets/dog").as_deref(),
            Some("GET /pets/dog")
        );
        assert_eq!(
            key(&table, "GET", "/pets/7").as_deref(),
            Some("GET /pets/{id}")
        );
        assert_eq!(
            key(&table, "PUT", "/pets/7").as_deref(),
            Some("ANY /pets/{id}")
        );
        assert_eq!(
            key(&table, "GET", "/a/b/c").as_deref(),
            Some("ANY /{proxy+}")
        );
        assert_eq!(key(&table, "GET", "/"), None);
        let matched = table.select("GET", "/a/b%20c/d");
        assert_eq!(
            matched
                .map(|m| m.path_parameters["proxy"].clone())
                .as_deref(),
            Some("a/b c/d")
        );
    }

    #[test]
    fn default_route_catches_the_rest() {
        let table = RouteTable::new(&[spec("GET /a"), spec("$default")]);
        assert_eq!(key(&table, "POST", "/a").as_deref(), Some("$default"));
        assert_eq!(key(&table, "GET", "/a").as_deref(), Some("GET /a"));
    }
}
