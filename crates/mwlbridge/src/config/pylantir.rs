//! Pylantir's JSON config, read as is: its keys mapped to the same [`Config`] as TOML's,
//! mwlbridge's own sections allowed beside them.

use super::*;

impl Config {
    /// Parses a Pylantir JSON config as is (`db_path`, `allowed_aet`, `data_sources`, ...).
    /// Pylantir keys that mean nothing here are listed in `ignored_keys`.
    pub fn from_pylantir_json(text: &str, file: &Path) -> Result<Config, ConfigError> {
        let doc: Value = serde_json::from_str(text)
            .map_err(|e| ConfigError::whole_file(file, format!("not valid JSON: {e}")))?;
        let mut problems = Report::new();
        let Some(obj) = doc.as_object() else {
            return Err(ConfigError::whole_file(
                file,
                "expected a JSON object at the top",
            ));
        };
        let mut root = Table::new(obj, "");
        let db_path = root.string("db_path", &mut problems);
        let interval = root
            .integer("db_update_interval", 1, 86_400, &mut problems)
            .map(|n| n as u64);
        let allowed = root
            .strings("allowed_aet", &mut problems)
            .unwrap_or_default();
        for (i, ae) in allowed.iter().enumerate() {
            if let Some(p) = ae_problem(ae) {
                problems.problem(format!("allowed_aet[{i}]"), p);
            }
        }
        let global_interval = operation_interval(&mut root, &mut problems);
        // mwlbridge's own sections may sit beside Pylantir's keys. Pylantir's legacy `site`
        // (a site id, not a table) is not one of them.
        let own: Map<String, Value> = ["server", "store", "site", "admin"]
            .into_iter()
            .filter_map(|k| Some((k, obj.get(k)?)))
            .filter(|(k, v)| *k != "site" || v.is_object())
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        for k in ["server", "store", "admin"] {
            root.raw(k);
        }
        if own.contains_key("site") {
            root.raw("site");
        }
        let Sections {
            mut server,
            store,
            site,
            admin,
        } = sections(&mut Table::new(&own, ""), &mut problems);
        if !allowed.is_empty() {
            if server.allowed_calling_aets.is_empty() {
                server.allowed_calling_aets = allowed;
            } else {
                problems.problem(
                    "allowed_aet",
                    "server.allowed_calling_aets is set too; keep one of the two",
                );
            }
        }
        if db_path.is_some() && own.get("store").is_some_and(|s| s.get("path").is_some()) {
            problems.problem("db_path", "store.path is set too; keep one of the two");
        }
        let mut sources = Vec::new();
        let mut ignored = Vec::new();
        if let Some(list) = root.raw("data_sources") {
            let Value::Array(items) = list else {
                problems.problem("data_sources", "expected a list");
                return finish_err(file, problems);
            };
            for (i, item) in items.iter().enumerate() {
                let key = format!("data_sources[{i}]");
                let Value::Object(map) = item else {
                    problems.problem(key, "expected an object");
                    continue;
                };
                if let Some(s) = source_from_pylantir(
                    map,
                    key,
                    interval,
                    global_interval,
                    &mut ignored,
                    &mut problems,
                ) {
                    sources.push(s);
                }
            }
        } else if let Some(mapping) = root.raw("redcap2wl") {
            sources.push(legacy_redcap(&mut root, mapping, interval, global_interval));
        }
        ignored.extend(root.unread());
        ignored.sort();
        // Without a `site` table, the Calpendo source's zone is the site's (Pylantir has
        // no site section).
        let site = site.unwrap_or_else(|| SiteConfig {
            timezone: sources
                .iter()
                .find_map(|s| s.settings.get("timezone").and_then(Value::as_str))
                .unwrap_or(worklist_store::DEFAULT_TIMEZONE)
                .to_string(),
            tzdir: None,
        });
        let store_path_set = own.get("store").is_some_and(|s| s.get("path").is_some());
        let mut store = store.unwrap_or_else(StoreConfig::default_at_default_path);
        match db_path {
            Some(p) => store.path = expand_home(Path::new(&p)),
            None if !store_path_set => {
                store.path = expand_home(Path::new(PYLANTIR_DEFAULT_DB_PATH));
            }
            None => {}
        }
        finish(
            Config {
                file: file.to_path_buf(),
                format: ConfigFormat::PylantirJson,
                server,
                store,
                site,
                admin,
                sources,
                ignored_keys: ignored,
                warnings: Vec::new(),
            },
            problems,
        )
    }
}

/// Pylantir's legacy form (no `data_sources`; top-level `redcap2wl`, `site`, `protocol`,
/// `db_update_interval`, `operation_interval`) as the one REDCap source Pylantir makes of
/// it, `redcap_legacy`, in the same cases.
fn legacy_redcap(
    root: &mut Table<'_>,
    mapping: &Value,
    db_update_interval: Option<u64>,
    global_interval: Option<(Time, Time)>,
) -> SourceConfig {
    let mut settings = Map::new();
    settings.insert("field_mapping".into(), mapping.clone());
    settings.insert(
        "sync_interval".into(),
        Value::from(db_update_interval.unwrap_or(60)),
    );
    // A `site` table is mwlbridge's own section, not Pylantir's site id.
    if let Some(site) = root.raw("site").filter(|v| !v.is_object()) {
        settings.insert("site".into(), site.clone());
    }
    if let Some(protocol) = root.raw("protocol") {
        settings.insert("protocol".into(), protocol.clone());
    }
    SourceConfig {
        name: "redcap_legacy".into(),
        named: true,
        kind: SourceKind::Redcap,
        enabled: true,
        key: String::new(),
        operation_interval: global_interval,
        settings,
        written_as: &[
            ("field_mapping", "redcap2wl"),
            ("sync_interval", "db_update_interval"),
        ],
    }
}

/// Keys of a Pylantir data source that hold source settings at the source level.
const PYLANTIR_SOURCE_LEVEL_SETTINGS: &[&str] = &[
    "field_mapping",
    "sync_interval",
    "window_mode",
    "daily_window",
    "lookback_multiplier",
    "on_cancel",
    "max_workers",
    "station_aet_mapping",
    "source_timezone",
];

fn source_from_pylantir(
    map: &Map<String, Value>,
    key: String,
    db_update_interval: Option<u64>,
    global_interval: Option<(Time, Time)>,
    ignored: &mut Vec<String>,
    problems: &mut Report,
) -> Option<SourceConfig> {
    let mut t = Table::new(map, key.clone());
    let enabled = t.boolean("enabled", problems).unwrap_or(true);
    let type_name = map.get("type").and_then(Value::as_str).unwrap_or_default();
    if !enabled && type_name != "calpendo" {
        // A disabled REDCap source in a Pylantir file: nothing to do, nothing to check.
        ignored.push(key);
        return None;
    }
    let name = t.string("name", problems);
    let kind = kind_from(&mut t, problems);
    let op = operation_interval(&mut t, problems).or(global_interval);
    let mut settings = match t.table("config", problems) {
        Some(c) => {
            let mut m = Map::new();
            for k in c.unread() {
                if let Some(v) = map.get("config").and_then(|c| c.get(&k)) {
                    m.insert(k, v.clone());
                }
            }
            m
        }
        None => Map::new(),
    };
    for k in PYLANTIR_SOURCE_LEVEL_SETTINGS {
        if let Some(v) = t.raw(k) {
            settings.entry(k.to_string()).or_insert_with(|| v.clone());
        }
    }
    if let Some(n) = db_update_interval {
        settings
            .entry("sync_interval".to_string())
            .or_insert_with(|| Value::from(n));
    }
    t.reject_unknown(problems);
    Some(SourceConfig {
        named: name.is_some(),
        name: name.unwrap_or_else(|| type_name.to_string()),
        kind: kind?,
        enabled,
        key: format!("{key}.config"),
        operation_interval: op,
        settings,
        written_as: &[],
    })
}
