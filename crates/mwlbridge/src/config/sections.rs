//! mwlbridge's own sections (`server`, `store`, `site`, `admin`): one reader for a TOML
//! table and for the same object in a Pylantir JSON.

use super::*;

/// mwlbridge's own sections, read alike from TOML and from a Pylantir JSON.
pub(super) struct Sections {
    pub(super) server: ServerConfig,
    /// `None` when there is no `[store]`.
    pub(super) store: Option<StoreConfig>,
    /// `None` when there is no `[site]`.
    pub(super) site: Option<SiteConfig>,
    pub(super) admin: AdminConfig,
}

/// Reads `server`, `store`, `site` and `admin` of `root`, each at its defaults when
/// absent; unknown keys inside them are problems.
pub(super) fn sections(root: &mut Table<'_>, problems: &mut Report) -> Sections {
    let empty = Map::new();
    let server = match root.table("server", problems) {
        Some(mut t) => {
            let s = server_from(&mut t, problems);
            t.reject_unknown(problems);
            s
        }
        None => server_from(&mut Table::new(&empty, "server"), problems),
    };
    let store = root.table("store", problems).map(|mut t| {
        let path = t.string("path", problems).map(PathBuf::from);
        let retention = t.integer("retention_days", 1, 36_500, problems);
        let fraction = fraction(&mut t, "max_discontinue_fraction", problems);
        t.reject_unknown(problems);
        StoreConfig {
            path: path
                .map(|p| expand_home(&p))
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DB_PATH)),
            retention_days: retention.unwrap_or(DEFAULT_RETENTION_DAYS as i64) as u32,
            max_discontinue_fraction: fraction.unwrap_or(DEFAULT_MAX_DISCONTINUE_FRACTION),
        }
    });
    let site = root.table("site", problems).map(|mut t| {
        let s = site_from(&mut t, problems);
        t.reject_unknown(problems);
        s
    });
    let admin = match root.table("admin", problems) {
        Some(mut t) => {
            let a = admin_from(&mut t, problems);
            t.reject_unknown(problems);
            a
        }
        None => AdminConfig::default(),
    };
    Sections {
        server,
        store,
        site,
        admin,
    }
}

/// An IP address at `key`, or a problem naming it.
fn ip_address(t: &mut Table<'_>, key: &'static str, problems: &mut Report) -> Option<IpAddr> {
    let text = t.string(key, problems)?;
    match text.parse::<IpAddr>() {
        Ok(ip) => Some(ip),
        Err(_) => {
            problems.problem(
                t.key(key),
                format!("{text:?} is not an IP address (e.g. 0.0.0.0 or 127.0.0.1)"),
            );
            None
        }
    }
}

/// The `tls` table of `t` (named `name` in messages), its files checked by loading them;
/// `client_ca` only where `with_client_ca`.
fn tls_files(
    t: &mut Table<'_>,
    name: &str,
    with_client_ca: bool,
    problems: &mut Report,
) -> Option<TlsFiles> {
    let mut tt = t.table("tls", problems)?;
    let certificate = tt.string("certificate", problems).map(PathBuf::from);
    let private_key = tt.string("private_key", problems).map(PathBuf::from);
    let client_ca = if with_client_ca {
        tt.string("client_ca", problems).map(PathBuf::from)
    } else {
        None
    };
    tt.reject_unknown(problems);
    let (Some(certificate), Some(private_key)) = (certificate, private_key) else {
        problems.problem(
            tt.key("certificate"),
            format!("{name} needs both certificate and private_key"),
        );
        return None;
    };
    if let Err(e) = mwl_scp::tls::server_config(&certificate, &private_key, client_ca.as_deref()) {
        problems.problem(t.key("tls"), e.to_string());
    }
    Some(TlsFiles {
        certificate,
        private_key,
        client_ca,
    })
}

fn server_from(t: &mut Table<'_>, problems: &mut Report) -> ServerConfig {
    let ae_title = t.string("ae_title", problems);
    if let Some(ae) = &ae_title
        && let Some(p) = ae_problem(ae)
    {
        problems.problem(t.key("ae_title"), p);
    }
    let bind = ip_address(t, "bind", problems);
    let port = t.integer("port", 1, 65_535, problems);
    let accept_any = t.boolean("accept_any_called_ae", problems);
    let allowed = t
        .strings("allowed_calling_aets", problems)
        .unwrap_or_default();
    for (i, ae) in allowed.iter().enumerate() {
        if let Some(p) = ae_problem(ae) {
            problems.problem(format!("{}[{i}]", t.key("allowed_calling_aets")), p);
        }
    }
    let max_assoc = t.integer("max_associations", 1, 10_000, problems);
    let per_peer = t.integer("max_associations_per_peer", 1, 10_000, problems);
    let per_ae = t.integer("max_associations_per_ae", 1, 10_000, problems);
    let idle = t.integer("idle_timeout", 1, 86_400, problems);
    let max_pdu = t.integer("max_pdu_length", 4_096, 16_777_216, problems);
    let max_identifier = t.integer("max_identifier_bytes", 1_024, 64 << 20, problems);
    let max_responses = t.integer("max_responses", 0, 10_000_000, problems);
    let station_filter = t.boolean("station_filter_by_calling_ae", problems);
    let mpps_bytes = t.integer("mpps_max_stored_bytes", 4_096, 256 << 20, problems);
    let mpps_sets = t.integer("mpps_max_sets", 1, 1_000_000, problems);
    let mpps_same_ae = t.boolean("mpps_same_ae_only", problems);
    let tls = tls_files(t, "[server.tls]", true, problems);
    // The set of terms is the SCP's (`ResponseCharset`); an empty value is refused here
    // rather than taken as the default repertoire.
    let charset = t.string("character_set", problems).map(|cs| {
        match ResponseCharset::from_config_term(&cs) {
            Some(known) if !cs.trim().is_empty() => Ok(known.term().to_string()),
            _ => Err(cs),
        }
    });
    if let Some(Err(cs)) = &charset {
        problems.problem(
            t.key("character_set"),
            format!(
                "{cs:?} is not supported; use \"ISO_IR 192\" (UTF-8), \"ISO_IR 100\" (Latin-1) \
                 or \"ISO_IR 6\" (ASCII)"
            ),
        );
    }
    let mpps = MppsPolicy::default();
    ServerConfig {
        ae_title: ae_title.unwrap_or_else(|| DEFAULT_AE_TITLE.into()),
        bind: bind.unwrap_or(IpAddr::from([0, 0, 0, 0])),
        port: port.unwrap_or(DEFAULT_PORT as i64) as u16,
        accept_any_called_ae: accept_any.unwrap_or(false),
        allowed_calling_aets: allowed,
        max_associations: max_assoc.unwrap_or(32) as u32,
        max_associations_per_peer: per_peer.unwrap_or(16) as u32,
        max_associations_per_ae: per_ae.unwrap_or(8) as u32,
        idle_timeout: Duration::from_secs(idle.unwrap_or(60) as u64),
        max_pdu_length: max_pdu.unwrap_or(65_536) as u32,
        character_set: match charset {
            Some(Ok(term)) => term,
            _ => ResponseCharset::default().term().to_string(),
        },
        max_identifier_bytes: max_identifier.unwrap_or(1 << 20) as u32,
        max_responses: max_responses.unwrap_or(0) as u32,
        station_filter_by_calling_ae: station_filter.unwrap_or(false),
        mpps_max_stored_bytes: mpps_bytes.map_or(mpps.max_stored_bytes as u32, |b| b as u32),
        mpps_max_sets: mpps_sets.map_or(mpps.max_sets, |n| n as u32),
        mpps_same_ae_only: mpps_same_ae.unwrap_or(mpps.same_ae_only),
        tls,
    }
}

fn admin_from(t: &mut Table<'_>, problems: &mut Report) -> AdminConfig {
    let defaults = AdminConfig::default();
    let enabled = t.boolean("enabled", problems);
    let bind = ip_address(t, "bind", problems);
    let port = t.integer("port", 1, 65_535, problems);
    let unready = t.integer("unready_after_intervals", 1, 10_000, problems);
    let session_hours = t.integer("session_hours", 1, 24 * 30, problems);
    let tls = tls_files(t, "[admin.tls]", false, problems);
    let dicomweb = dicomweb_from(t, problems);
    AdminConfig {
        enabled: enabled.unwrap_or(defaults.enabled),
        bind: bind.unwrap_or(defaults.bind),
        port: port.map_or(defaults.port, |p| p as u16),
        tls,
        unready_after_intervals: unready.map_or(defaults.unready_after_intervals, |n| n as u32),
        session_lifetime: session_hours.map_or(defaults.session_lifetime, |h| {
            Duration::from_secs(h as u64 * 3600)
        }),
        dicomweb,
        explicit: true,
    }
}

/// `[admin.dicomweb]`.
fn dicomweb_from(t: &mut Table<'_>, problems: &mut Report) -> DicomwebConfig {
    let defaults = DicomwebConfig::default();
    let Some(mut d) = t.table("dicomweb", problems) else {
        return defaults;
    };
    let enabled = d.boolean("enabled", problems);
    let base = d.string("base", problems);
    if let Some(b) = &base
        && let Err(problem) = valid_base(b)
    {
        problems.problem(d.key("base"), problem);
    }
    d.reject_unknown(problems);
    DicomwebConfig {
        enabled: enabled.unwrap_or(defaults.enabled),
        base: base
            .filter(|b| valid_base(b).is_ok())
            .unwrap_or(defaults.base),
    }
}

/// Whether `base` can prefix the DICOMweb routes: `/`-separated non-empty segments of
/// unreserved characters (RFC 3986), no trailing `/` (axum would read `{` as a parameter).
fn valid_base(base: &str) -> Result<(), String> {
    let segment_ok = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
    };
    match base.strip_prefix('/') {
        Some(rest) if rest.split('/').all(segment_ok) => Ok(()),
        _ => Err(format!(
            "{base:?} is not a path like \"/dicomweb\": it must start with '/', have no \
             trailing '/', and use only letters, digits, '-', '.', '_' and '~' in each segment"
        )),
    }
}

fn site_from(t: &mut Table<'_>, problems: &mut Report) -> SiteConfig {
    let tzdir = t.string("tzdir", problems).map(PathBuf::from);
    let zones = match &tzdir {
        Some(dir) => match worklist_store::ZoneDb::from_dir(dir) {
            Ok(z) => Some(z),
            Err(e) => {
                problems.problem(t.key("tzdir"), e.to_string());
                None
            }
        },
        None => Some(worklist_store::ZoneDb::bundled()),
    };
    let timezone = t.string("timezone", problems);
    if let (Some(tz), Some(zones)) = (&timezone, &zones) {
        match zones.get(tz) {
            Err(e) => problems.problem(t.key("timezone"), e.to_string()),
            Ok(_) if legacy_or_fixed_zone(tz) => problems.warn(
                t.key("timezone"),
                format!(
                    "{tz:?} is a legacy or fixed-offset zone, not a place's: at a site that \
                     changes its clocks, DICOM times may be an hour off for half the year; \
                     use the site's Area/City zone (e.g. \"America/Edmonton\")"
                ),
            ),
            Ok(_) => {}
        }
    }
    SiteConfig {
        timezone: timezone.unwrap_or_else(|| worklist_store::DEFAULT_TIMEZONE.into()),
        tzdir,
    }
}

/// Whether `name` is a legacy zone name (`MST`, `EST5EDT`) or a fixed offset
/// (`Etc/GMT+7`) rather than UTC itself or a place's zone: most likely a mistake for the
/// site's Area/City zone (tzdata now makes `MST` Phoenix's time: no daylight saving).
fn legacy_or_fixed_zone(name: &str) -> bool {
    let utc = [
        "UTC", "Etc/UTC", "Etc/UCT", "UCT", "Zulu", "Etc/Zulu", "GMT", "Etc/GMT",
    ];
    !utc.contains(&name) && (!name.contains('/') || name.starts_with("Etc/"))
}

/// A share above 0 and at most 1.
fn fraction(t: &mut Table<'_>, key: &'static str, problems: &mut Report) -> Option<f64> {
    let v = t.raw(key)?;
    match v.as_f64() {
        Some(f) if f > 0.0 && f <= 1.0 => Some(f),
        _ => {
            t.problem(
                problems,
                key,
                format!("{v} is not a share above 0 and at most 1 (e.g. 0.5)"),
            );
            None
        }
    }
}
