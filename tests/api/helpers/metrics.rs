//! Reading the app's Prometheus metrics.

/// Sum of the samples of counter `metric` with `label` in Prometheus text
/// (parsed by a real Prometheus text parser).
pub fn metric(text: &str, metric: &str, label: (&str, &str)) -> f64 {
    let lines = text.lines().map(|l| Ok(l.to_owned()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("valid Prometheus text");
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == metric && s.labels.get(label.0) == Some(label.1))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Untyped(v) => v,
            _ => 0.0,
        })
        .sum()
}
