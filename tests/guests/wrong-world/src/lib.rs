//! A component that exports some other world: the host must refuse it with a clear message.

wit_bindgen::generate!({
    inline: "
        package test:other@0.1.0;
        world other {
            export answer: func() -> u32;
        }
    ",
});

struct Other;

impl Guest for Other {
    fn answer() -> u32 {
        42
    }
}

export!(Other);
