"""The interfaces, and only the interfaces: what a training backend, a metric or a scorer implements, the findings
and errors every command reports, and the generic name registry plug-ins are found through. Nothing in `api/`
imports a concrete ftbench module, torch or transformers."""
