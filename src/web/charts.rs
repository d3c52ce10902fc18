//! Server-rendered SVG charts (no JavaScript): horizontal bars with labels, escaped.

/// One bar: its label and value.
pub struct Bar {
    pub label: String,
    pub value: i64,
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// A horizontal bar chart as an SVG document fragment, with a title for screen readers.
pub fn bar_chart(title: &str, bars: &[Bar]) -> String {
    let row = 28;
    let label_w = 260;
    let bar_w = 360;
    let height = row * bars.len().max(1) + 10;
    let max = bars.iter().map(|b| b.value).max().unwrap_or(0).max(1);
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-labelledby="chart-title" viewBox="0 0 {} {height}" width="100%" class="chart"><title id="chart-title">{}</title>"#,
        label_w + bar_w + 80,
        escape(title)
    );
    for (i, b) in bars.iter().enumerate() {
        let y = i * row + 5;
        let w = (b.value.max(0) as f64 / max as f64 * bar_w as f64).round() as i64;
        let label: String = b.label.chars().take(38).collect();
        svg.push_str(&format!(
            r##"<text x="0" y="{}" font-size="13">{}</text><rect x="{label_w}" y="{y}" width="{w}" height="{}" fill="#0b57d0"></rect><text x="{}" y="{}" font-size="13">{}</text>"##,
            y + 17,
            escape(&label),
            row - 8,
            label_w as i64 + w + 6,
            y + 17,
            b.value
        ));
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_escape_labels_and_scale_bars() {
        let svg = bar_chart(
            "Stock <by> model",
            &[
                Bar {
                    label: "<script>x</script>".into(),
                    value: 10,
                },
                Bar {
                    label: "B".into(),
                    value: 5,
                },
            ],
        );
        assert!(svg.contains("&lt;script&gt;") && !svg.contains("<script>"));
        assert!(svg.contains(r#"width="360""#) && svg.contains(r#"width="180""#));
        assert!(svg.contains("<title id=\"chart-title\">Stock &lt;by&gt; model</title>"));
    }
}
