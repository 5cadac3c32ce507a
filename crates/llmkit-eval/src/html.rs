//! The self-contained HTML report: inline CSS, inline SVG bar charts per metric, a
//! cost-vs-quality scatter and per-item drill-down; no network, no external script.

use std::fmt::Write as _;

use crate::metrics::Metric;
use crate::report::{RunRecord, best_per_metric, fmt_value};

/// Escapes text for HTML element content and attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#222}\
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}\
th{background:#f4f4f4}.best{font-weight:bold;color:#0a6}.charts{display:flex;flex-wrap:wrap;gap:1.5em}\
figure{margin:0}figcaption{font-weight:bold}details{margin:.3em 0}summary{cursor:pointer}\
.fail{color:#b00}.ok{color:#0a6}pre{white-space:pre-wrap;background:#f8f8f8;padding:.5em;margin:.2em 0}";

/// Renders a run as one HTML page.
pub fn render_html(record: &RunRecord) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>llmkit eval: {name}</title><style>{STYLE}</style></head><body>\
         <h1>Eval: {name}</h1><p>Run <code>{id}</code> · task <code>{task:?}</code> · \
         dataset <code>{dataset}</code></p>",
        name = esc(&record.spec),
        id = esc(&record.id),
        task = record.task,
        dataset = esc(&record.dataset),
    );
    summary_table(&mut h, record);
    h.push_str("<h2>Metrics</h2><div class=\"charts\">");
    for m in &record.metrics {
        bar_chart(&mut h, record, *m);
    }
    h.push_str("</div>");
    scatter(&mut h, record);
    drill_down(&mut h, record);
    h.push_str("</body></html>\n");
    h
}

fn summary_table(h: &mut String, record: &RunRecord) {
    let best = best_per_metric(record);
    h.push_str("<table><tr><th>variant</th><th>model</th>");
    for m in &record.metrics {
        let _ = write!(h, "<th>{}</th>", esc(&record.metric_label(*m)));
    }
    h.push_str("<th>errors</th></tr>");
    for v in &record.variants {
        let _ = write!(h, "<tr><td>{}</td><td>{}</td>", esc(&v.name), esc(&v.model));
        for m in &record.metrics {
            match v.metrics.get(m.name()) {
                Some(x) => {
                    let is_best = record.variants.len() > 1
                        && best.get(m.name()).is_some_and(|b| b.contains(&v.name));
                    let class = if is_best { " class=\"best\"" } else { "" };
                    let _ = write!(h, "<td{class}>{}</td>", esc(&fmt_value(*m, *x)));
                }
                None => h.push_str("<td>n/a</td>"),
            }
        }
        let _ = write!(h, "<td>{}</td></tr>", v.errors);
    }
    h.push_str("</table>");
}

/// A horizontal bar per variant, scaled to the largest value.
fn bar_chart(h: &mut String, record: &RunRecord, m: Metric) {
    let vals: Vec<(&str, f64)> = record
        .variants
        .iter()
        .filter_map(|v| v.metrics.get(m.name()).map(|x| (v.name.as_str(), *x)))
        .collect();
    let max = vals.iter().map(|(_, x)| *x).fold(0.0, f64::max);
    let (row, label_w, bar_w) = (24.0, 140.0, 220.0);
    let height = row * vals.len().max(1) as f64 + 8.0;
    let _ = write!(
        h,
        "<figure><figcaption>{}{}</figcaption><svg class=\"chart\" data-metric=\"{}\" \
         xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{height}\" role=\"img\">",
        esc(&record.metric_label(m)),
        if m.higher_is_better() {
            " (higher is better)"
        } else {
            " (lower is better)"
        },
        m.name(),
        label_w + bar_w + 90.0,
    );
    for (i, (name, x)) in vals.iter().enumerate() {
        let y = 4.0 + row * i as f64;
        let w = if max > 0.0 { bar_w * x / max } else { 0.0 };
        let _ = write!(
            h,
            "<text x=\"0\" y=\"{ty}\" font-size=\"12\">{n}</text>\
             <rect x=\"{label_w}\" y=\"{y}\" width=\"{w:.1}\" height=\"{bh}\" fill=\"#4a7bd0\"/>\
             <text x=\"{tx:.1}\" y=\"{ty}\" font-size=\"12\">{v}</text>",
            ty = y + 14.0,
            n = esc(name),
            bh = row - 6.0,
            tx = label_w + w + 4.0,
            v = esc(&fmt_value(m, *x)),
        );
    }
    h.push_str("</svg></figure>");
}

/// Cost per item (x) against the first quality metric (y), one dot per variant.
fn scatter(h: &mut String, record: &RunRecord) {
    let Some(q) = record
        .metrics
        .iter()
        .copied()
        .find(|m| m.higher_is_better())
    else {
        return;
    };
    let pts: Vec<(&str, f64, f64)> = record
        .variants
        .iter()
        .filter_map(|v| {
            let c = v
                .metrics
                .get(Metric::CostPerItem.name())
                .copied()
                .or_else(|| v.cost_usd.map(|c| c / v.items.len().max(1) as f64))?;
            Some((v.name.as_str(), c, *v.metrics.get(q.name())?))
        })
        .collect();
    let _ = write!(
        h,
        "<h2>Cost vs quality</h2><p>x: cost per item (USD), y: {}</p>",
        q.name()
    );
    if pts.is_empty() {
        h.push_str("<p>No variant has a known cost.</p>");
        return;
    }
    let (w, ht, pad) = (420.0, 260.0, 40.0);
    let xmax = pts.iter().map(|p| p.1).fold(0.0, f64::max).max(1e-12);
    let ymax = pts.iter().map(|p| p.2).fold(0.0, f64::max).max(1e-12);
    let _ = write!(
        h,
        "<svg class=\"chart scatter\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" \
         height=\"{ht}\"><line x1=\"{pad}\" y1=\"{b}\" x2=\"{w}\" y2=\"{b}\" stroke=\"#888\"/>\
         <line x1=\"{pad}\" y1=\"0\" x2=\"{pad}\" y2=\"{b}\" stroke=\"#888\"/>",
        b = ht - pad,
    );
    for (name, c, y) in pts {
        let cx = pad + (w - pad * 2.0) * c / xmax;
        let cy = (ht - pad) - (ht - pad * 2.0) * y / ymax;
        let _ = write!(
            h,
            "<circle cx=\"{cx:.1}\" cy=\"{cy:.1}\" r=\"5\" fill=\"#d0644a\"><title>{n}: \
             ${c:.6}, {y:.3}</title></circle><text x=\"{tx:.1}\" y=\"{cy:.1}\" \
             font-size=\"11\">{n}</text>",
            n = esc(name),
            tx = cx + 7.0,
        );
    }
    h.push_str("</svg>");
}

/// Per variant, per item: expected, output, scores and errors in collapsible sections.
fn drill_down(h: &mut String, record: &RunRecord) {
    h.push_str("<h2>Items</h2>");
    for v in &record.variants {
        let _ = write!(
            h,
            "<details><summary>{} ({} items)</summary>",
            esc(&v.name),
            v.items.len()
        );
        for it in &v.items {
            let passed = it.output.is_some() && it.scores.values().all(|s| *s >= 1.0 - 1e-9);
            let mark = if passed { "ok" } else { "fail" };
            let scores: Vec<String> = it
                .scores
                .iter()
                .map(|(k, s)| format!("{k}={s:.3}"))
                .collect();
            let _ = write!(
                h,
                "<details class=\"item\"><summary class=\"{mark}\">#{} {} · {:.0} ms</summary>\
                 <div>input</div><pre>{}</pre><div>expected</div><pre>{}</pre>\
                 <div>output</div><pre>{}</pre>",
                it.index,
                esc(&scores.join(" ")),
                it.latency_ms,
                esc(&it.input),
                esc(&match &it.expected {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                }),
                esc(it.output.as_deref().unwrap_or("")),
            );
            if let Some(e) = &it.error {
                let _ = write!(h, "<div class=\"fail\">error: {}</div>", esc(e));
            }
            h.push_str("</details>");
        }
        h.push_str("</details>");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
