//! Every file of the UI, compiled into the binary.

pub struct Asset {
    pub name: &'static str,
    pub body: &'static str,
}

impl Asset {
    pub fn content_type(&self) -> &'static str {
        match self.name.rsplit('.').next() {
            Some("html") => "text/html; charset=utf-8",
            Some("css") => "text/css; charset=utf-8",
            Some("js") => "text/javascript; charset=utf-8",
            Some("svg") => "image/svg+xml",
            _ => "application/octet-stream",
        }
    }
}

macro_rules! assets {
    ($($name:literal),* $(,)?) => {
        pub const ASSETS: &[Asset] = &[$(Asset { name: $name, body: include_str!(concat!("../assets/", $name)) }),*];
    };
}

assets!(
    "index.html",
    "app.css",
    "js/app.js",
    "js/api.js",
    "js/chart.js",
    "js/colors.js",
    "js/compare.js",
    "js/dom.js",
    "js/histogram.js",
    "js/layout.js",
    "js/map.js",
    "js/mapview.js",
    "js/replay.js",
    "js/sql.js",
    "js/state.js",
    "js/timepicker.js",
    "js/trace.js",
    "js/xlog.js",
);

#[cfg(test)]
mod tests {
    use super::*;

    /// A module imported by another but missing from the table would 404 only in the browser.
    #[test]
    fn every_imported_module_is_embedded() {
        for a in ASSETS.iter().filter(|a| a.name.ends_with(".js")) {
            for line in a.body.lines().filter(|l| l.starts_with("import ")) {
                let spec = line.rsplit_once(" from '").map(|(_, s)| s.trim_end_matches("';")).unwrap_or("");
                let target = format!("js/{}", spec.trim_start_matches("./"));
                assert!(ASSETS.iter().any(|b| b.name == target), "{} imports {spec}, not embedded", a.name);
            }
        }
        let dir = "assets/js";
        for entry in std::fs::read_dir(dir).unwrap() {
            let name = format!("js/{}", entry.unwrap().file_name().to_string_lossy());
            assert!(ASSETS.iter().any(|a| a.name == name), "{name} is in assets/js but not embedded");
        }
    }
}
