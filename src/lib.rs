//! walle: placeholder
