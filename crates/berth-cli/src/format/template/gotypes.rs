//! What JSON loses of the Go structs docker's `inspect` templates run on.
//! The docker CLI executes an inspect template on the typed struct first
//! and falls back to the raw JSON only when that fails; on the typed struct
//! a field left out of the JSON (`omitempty`) is its zero value and a nil
//! slice or map prints `[]` or `map[]`, not `<nil>`. Keyed by field name:
//! these names mean one Go type throughout docker's inspect structs.

use super::value::{GoNil, Value};

/// Slices (`strslice.StrSlice`, `[]string`, `[]Mount`…) of container, image,
/// network and volume inspect.
const SLICES: &[&str] = &[
    "Aliases",
    "Args",
    "Binds",
    "BlkioDeviceReadBps",
    "BlkioDeviceReadIOps",
    "BlkioDeviceWriteBps",
    "BlkioDeviceWriteIOps",
    "BlkioWeightDevice",
    "CapAdd",
    "CapDrop",
    "Cmd",
    "DNSNames",
    "DeviceCgroupRules",
    "DeviceRequests",
    "Devices",
    "Dns",
    "DnsOptions",
    "DnsSearch",
    "Entrypoint",
    "Env",
    "ExtraHosts",
    "GroupAdd",
    "Layers",
    "Links",
    "Manifests",
    "MaskedPaths",
    "Mounts",
    "OnBuild",
    "ReadonlyPaths",
    "RepoDigests",
    "RepoTags",
    "SecondaryIPAddresses",
    "SecondaryIPv6Addresses",
    "SecurityOpt",
    "Shell",
    "Test",
    "Ulimits",
    "VolumesFrom",
];

/// Maps (`map[string]string`, `nat.PortSet`, `nat.PortMap`…).
const MAPS: &[&str] = &[
    "Annotations",
    "Containers",
    "Data",
    "DriverOpts",
    "ExposedPorts",
    "Labels",
    "Networks",
    "Options",
    "PortBindings",
    "Ports",
    "StorageOpt",
    "Sysctls",
    "Tmpfs",
    "Volumes",
];

/// Pointers docker leaves out of the JSON when nil (`omitempty`).
const POINTERS: &[&str] = &[
    "Descriptor",
    "Health",
    "Healthcheck",
    "IPAMConfig",
    "Node",
    "SizeRootFs",
    "SizeRw",
    "StopTimeout",
];

/// Booleans and strings docker leaves out when zero.
const BOOLS: &[&str] = &["ArgsEscaped", "NetworkDisabled"];
const STRINGS: &[&str] = &[
    "Author",
    "Comment",
    "Container",
    "DockerVersion",
    "MacAddress",
    "Parent",
    "StopSignal",
    "Variant",
];

/// The typed value of a field whose JSON is `null`.
pub(crate) fn typed_null(name: &str) -> Value {
    if SLICES.contains(&name) {
        Value::Nil(GoNil::Slice)
    } else if MAPS.contains(&name) {
        Value::Nil(GoNil::Map)
    } else {
        Value::Null
    }
}

/// Whether the field is a map (its keys are data, not fields).
pub(crate) fn is_map(name: &str) -> bool {
    MAPS.contains(&name)
}

/// The zero value of a field the JSON left out, when docker's struct has
/// it; `None` for a name no struct has (an error, as in docker).
pub(crate) fn omitted(name: &str) -> Option<Value> {
    if POINTERS.contains(&name) {
        Some(Value::Null)
    } else if SLICES.contains(&name) || MAPS.contains(&name) {
        Some(typed_null(name))
    } else if BOOLS.contains(&name) {
        Some(Value::Bool(false))
    } else if STRINGS.contains(&name) {
        Some(Value::str(""))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_sorted_and_disjoint() {
        for t in [SLICES, MAPS, POINTERS, BOOLS, STRINGS] {
            assert!(t.windows(2).all(|w| w[0] < w[1]), "{t:?}");
        }
        for s in SLICES {
            assert!(!MAPS.contains(s) && !POINTERS.contains(s), "{s}");
        }
        assert_eq!(typed_null("Cmd").to_string(), "[]");
        assert_eq!(typed_null("Tmpfs").to_string(), "map[]");
        assert_eq!(typed_null("Gateway").to_string(), "<nil>");
        assert_eq!(omitted("Health"), Some(Value::Null));
        assert_eq!(omitted("Nope"), None);
    }
}
