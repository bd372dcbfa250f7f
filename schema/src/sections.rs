//! Which tool reads which top-level section of a routesim file, and how a tool skips the sections that are
//! not its own.
//!
//! One file is both a scenario and a gateway config. The endpoints, policies, groups, seed, client timeouts,
//! health checks, keys and quality model are shared; the simulator alone reads the traffic, run length,
//! faults, report, replay and tuning sections. That division is a fact of the file format, so it is stated
//! here, once: the gateway parses a file through [`SkipSections`] with [`SIMULATOR_SECTIONS`] and keeps no
//! list of the simulator's fields. Tests in both tools check the lists against their own structs
//! ([`field_names`]), so a section added to the scenario without being registered here fails a test.

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, forward_to_deserialize_any};
use std::fmt;
use std::marker::PhantomData;

/// The top-level sections only the simulator reads: a gateway given a scenario accepts and ignores them.
pub const SIMULATOR_SECTIONS: &[&str] = &[
    "name",
    "description",
    "replications",
    "duration",
    "requests",
    "warmup",
    "warmup_requests",
    "traffic",
    "include_endpoints",
    "faults",
    "report",
    "replay",
    "tune",
];

/// The sections a file's parser skips: a set of top-level keys (`T` names it, [`SIMULATOR_SECTIONS`] for
/// the gateway).
pub trait ForeignSections {
    /// The keys to skip.
    const SECTIONS: &'static [&'static str];
}

/// The simulator's sections (for the gateway's parser).
#[derive(Debug)]
pub struct Simulator;

impl ForeignSections for Simulator {
    const SECTIONS: &'static [&'static str] = SIMULATOR_SECTIONS;
}

/// `T` parsed from a table whose top-level keys of `F::SECTIONS` are skipped (their values are read and
/// ignored); every other key reaches `T`'s own deserializer, so `deny_unknown_fields` on `T` still rejects
/// a misspelt section, and errors inside a section keep their field path and line.
#[derive(Debug)]
pub struct SkipSections<T, F> {
    /// The parsed value.
    pub value: T,
    foreign: PhantomData<F>,
}

impl<'de, T: Deserialize<'de>, F: ForeignSections> Deserialize<'de> for SkipSections<T, F> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = T::deserialize(Filtering { inner: deserializer, skip: F::SECTIONS })?;
        Ok(SkipSections { value, foreign: PhantomData })
    }
}

/// A deserializer that hands `T` its table without the skipped keys.
struct Filtering<D> {
    inner: D,
    skip: &'static [&'static str],
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Filtering<D> {
    type Error = D::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.inner.deserialize_any(FilteringVisitor { inner: visitor, skip: self.skip })
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.inner.deserialize_struct(name, fields, FilteringVisitor { inner: visitor, skip: self.skip })
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.inner.deserialize_map(FilteringVisitor { inner: visitor, skip: self.skip })
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
        unit_struct newtype_struct seq tuple tuple_struct enum identifier ignored_any
    }
}

struct FilteringVisitor<V> {
    inner: V,
    skip: &'static [&'static str],
}

impl<'de, V: Visitor<'de>> Visitor<'de> for FilteringVisitor<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.expecting(f)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        self.inner.visit_map(FilteringMap { inner: map, skip: self.skip })
    }
}

/// The table's entries with the skipped ones read past.
struct FilteringMap<A> {
    inner: A,
    skip: &'static [&'static str],
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for FilteringMap<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, A::Error> {
        let mut seed = Some(seed);
        loop {
            // The key is read inside the inner table's own key step (so a field-path tracker around it
            // still names a misspelt key); a skipped key's value is then read past.
            let key = KeySeed { seed: &mut seed, skip: self.skip };
            match self.inner.next_key_seed(key)? {
                None => return Ok(None),
                Some(Some(value)) => return Ok(Some(value)),
                Some(None) => {
                    self.inner.next_value::<IgnoredAny>()?;
                }
            }
        }
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, A::Error> {
        self.inner.next_value_seed(seed)
    }
}

/// Reads one key: `None` for a skipped one, else the key passed on to `T`'s seed.
struct KeySeed<'a, K> {
    seed: &'a mut Option<K>,
    skip: &'static [&'static str],
}

impl<'de, K: DeserializeSeed<'de>> DeserializeSeed<'de> for KeySeed<'_, K> {
    type Value = Option<K::Value>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        let key = String::deserialize(deserializer)?;
        if self.skip.contains(&key.as_str()) {
            return Ok(None);
        }
        let seed = self.seed.take().ok_or_else(|| de::Error::custom("a table key was read twice"))?;
        seed.deserialize(de::value::StringDeserializer::new(key)).map(Some)
    }
}

/// The field names of a struct as its `Deserialize` implementation declares them (serde's `fields`
/// argument), without writing them out: for tests that compare a struct with the lists above.
pub fn field_names<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    struct Probe(Option<&'static [&'static str]>);
    #[derive(Debug)]
    struct Stop;
    impl fmt::Display for Stop {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("probe")
        }
    }
    impl std::error::Error for Stop {}
    impl de::Error for Stop {
        fn custom<M: fmt::Display>(_: M) -> Self {
            Stop
        }
    }
    impl<'de> Deserializer<'de> for &mut Probe {
        type Error = Stop;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
            Err(Stop)
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Stop> {
            self.0 = Some(fields);
            Err(Stop)
        }
        forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
            unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
        }
    }
    let mut probe = Probe(None);
    let _ = T::deserialize(&mut probe);
    probe.0.unwrap_or(&[])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_toml;
    use std::path::Path;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Served {
        seed: u64,
        #[serde(default)]
        server: Option<Server>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Server {
        port: u16,
    }

    type File = SkipSections<Served, Simulator>;

    #[test]
    fn the_simulators_sections_are_skipped_whatever_their_shape() {
        let text = "seed = 3\nname = \"x\"\nreplications = 2\n[traffic]\nrate = 5\n[[faults]]\nkind = \"outage\"\n\
                    [server]\nport = 80\n[tune.budget]\ncandidates = 4\n";
        let file: File = parse_toml(Path::new("g.toml"), text).unwrap();
        assert_eq!(file.value, Served { seed: 3, server: Some(Server { port: 80 }) });
    }

    #[test]
    fn a_misspelt_section_is_still_an_error_with_a_suggestion() {
        let err = parse_toml::<File>(Path::new("g.toml"), "seed = 3\nserver_ = 1\n").unwrap_err();
        assert!(err.message.contains("unknown field `server_`"), "{err}");
        assert_eq!((err.path.as_str(), err.line), ("server_", Some(2)));
        assert_eq!(err.suggestion.as_deref(), Some("server"));
    }

    #[test]
    fn errors_inside_a_kept_section_keep_their_path_and_line() {
        let err = parse_toml::<File>(Path::new("g.toml"), "seed = 3\nname = \"x\"\n[server]\nport = \"eighty\"\n")
            .unwrap_err();
        assert_eq!(err.path, "server.port");
        assert_eq!(err.line, Some(4));
    }

    #[test]
    fn field_names_reads_what_serde_declares() {
        assert_eq!(field_names::<Served>(), &["seed", "server"]);
    }
}
