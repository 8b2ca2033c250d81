//! Host-side bindings for the `sluice:task` world, generated from `sdk/wit`.
//!
//! The one place the WIT becomes Rust types on the host. Capabilities implement
//! the generated `Host` traits in their own modules; nothing else lives here.

wasmtime::component::bindgen!({
    path: "../sdk/wit",
    world: "task",
    imports: { default: async },
    exports: { default: async },
});

// The world `use`s `context` and `task-error`, so bindgen already exports them at this level.
