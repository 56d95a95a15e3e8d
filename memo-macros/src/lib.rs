//! TEMP
use proc_macro::TokenStream;
#[proc_macro_attribute]
pub fn handler(_args: TokenStream, item: TokenStream) -> TokenStream {
    item
}
#[proc_macro_attribute]
pub fn prepare_memory(_args: TokenStream, item: TokenStream) -> TokenStream {
    item
}
