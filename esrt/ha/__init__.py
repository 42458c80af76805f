"""High-availability tools: `mdump` for monitor scripts and the `ocf:esrt:region` agent."""
