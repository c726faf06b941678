"""The built-in demo: synthetic clips (`clips`), the dataset on disk (`dataset`), and `snapaction demo` (`run`)."""
