//! Every misuse of the handler attributes fails to compile with a precise error; every accepted
//! form compiles (warning-free under `#![deny(warnings)]`).

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/fail/*.rs");
    t.pass("tests/pass/*.rs");
}
