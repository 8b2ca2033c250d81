//! A WASI preview1 program's own exit code, through the component adapter.
//!
//! The official preview1 adapter turns `proc_exit(n)` into `wasi:cli/exit.exit(err)` for
//! every non-zero `n`, so ripgrep's "nothing found" (1) and "bad pattern" (2) would read
//! alike. Before adapting a module this routes its `proc_exit` import to a second, tiny
//! adapter (`sluice_exit`) that calls `wasi:cli/exit.exit-with-code(n)` instead (codes above
//! 255 become 255), which the host links. Owns that rewrite and that adapter; everything
//! else of the module is copied byte for byte.

use wasm_encoder::{
    CodeSection, EntityType, ExportKind, ExportSection, Function, FunctionSection, ImportSection, Instruction, Module,
    RawSection, TypeSection, ValType,
};
use wasmparser::{Parser, Payload};

/// The import module the rewritten `proc_exit` comes from (the adapter's name).
pub(crate) const EXIT_ADAPTER: &str = "sluice_exit";
const PREVIEW1: &str = "wasi_snapshot_preview1";

/// The WIT the adapter imports: `exit-with-code` of the `wasi:cli` version the host links.
const EXIT_WIT: &str = "package wasi:cli@0.2.12;\n\
    interface exit {\n  exit-with-code: func(status-code: u8);\n}\n";
const ADAPTER_WIT: &str = "package sluice:exit;\nworld adapter {\n  import wasi:cli/exit@0.2.12;\n}\n";

/// `module` with its `wasi_snapshot_preview1.proc_exit` import taken from [`EXIT_ADAPTER`];
/// `None` when it imports no `proc_exit` (nothing to route).
pub(crate) fn route_proc_exit(module: &[u8]) -> Result<Option<Vec<u8>>, String> {
    let mut out = Module::new();
    let mut routed = false;
    for payload in Parser::new(0).parse_all(module) {
        let payload = payload.map_err(|e| format!("reading the module: {e}"))?;
        match payload {
            Payload::Version { .. } | Payload::End(_) => {}
            Payload::ImportSection(reader) => {
                let mut imports = ImportSection::new();
                for import in reader {
                    let import = import.map_err(|e| format!("reading the module's imports: {e}"))?;
                    let ty =
                        EntityType::try_from(import.ty).map_err(|e| format!("an import of an unknown kind: {e}"))?;
                    let from = if import.module == PREVIEW1 && import.name == "proc_exit" {
                        routed = true;
                        EXIT_ADAPTER
                    } else {
                        import.module
                    };
                    imports.import(from, import.name, ty);
                }
                out.section(&imports);
            }
            other => {
                if let Some((id, range)) = other.as_section() {
                    out.section(&RawSection { id, data: &module[range] });
                }
            }
        }
    }
    Ok(routed.then(|| out.finish()))
}

/// The adapter: exports `proc_exit(code)`, which calls `exit-with-code(min(code, 255))`.
pub(crate) fn adapter() -> Result<Vec<u8>, String> {
    let mut module = Module::new();
    let mut types = TypeSection::new();
    types.ty().function([ValType::I32], []);
    module.section(&types);
    let mut imports = ImportSection::new();
    imports.import("wasi:cli/exit@0.2.12", "exit-with-code", EntityType::Function(0));
    module.section(&imports);
    let mut functions = FunctionSection::new();
    functions.function(0);
    module.section(&functions);
    let mut exports = ExportSection::new();
    exports.export("proc_exit", ExportKind::Func, 1);
    module.section(&exports);
    let mut body = Function::new([]);
    body.instruction(&Instruction::LocalGet(0))
        .instruction(&Instruction::I32Const(255))
        .instruction(&Instruction::LocalGet(0))
        .instruction(&Instruction::I32Const(255))
        .instruction(&Instruction::I32LeU)
        .instruction(&Instruction::Select)
        .instruction(&Instruction::Call(0))
        .instruction(&Instruction::Unreachable)
        .instruction(&Instruction::End);
    let mut code = CodeSection::new();
    code.function(&body);
    module.section(&code);
    let mut bytes = module.finish();
    let mut resolve = wit_parser::Resolve::default();
    resolve.push_str("wasi-cli-exit.wit", EXIT_WIT).map_err(|e| format!("{e:#}"))?;
    let package = resolve.push_str("sluice-exit.wit", ADAPTER_WIT).map_err(|e| format!("{e:#}"))?;
    let world = resolve.select_world(&[package], Some("adapter")).map_err(|e| format!("{e:#}"))?;
    wit_component::embed_component_metadata(&mut bytes, &resolve, world, wit_component::StringEncoding::UTF8)
        .map_err(|e| format!("{e:#}"))?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_proc_exit_is_routed() {
        let mut module = Module::new();
        let mut types = TypeSection::new();
        types.ty().function([ValType::I32], []);
        module.section(&types);
        let mut imports = ImportSection::new();
        imports.import(PREVIEW1, "proc_exit", EntityType::Function(0));
        imports.import(PREVIEW1, "sched_yield", EntityType::Function(0));
        module.section(&imports);
        let routed = route_proc_exit(&module.finish()).unwrap().expect("routed");
        let mut seen = Vec::new();
        for payload in Parser::new(0).parse_all(&routed) {
            if let Payload::ImportSection(reader) = payload.unwrap() {
                seen.extend(reader.into_iter().map(|i| i.map(|i| (i.module.to_string(), i.name.to_string())).unwrap()));
            }
        }
        assert_eq!(
            seen,
            [("sluice_exit".to_string(), "proc_exit".to_string()), (PREVIEW1.to_string(), "sched_yield".to_string())]
        );
        assert!(route_proc_exit(&Module::new().finish()).unwrap().is_none());
        assert!(adapter().is_ok());
    }
}
