"""Protocol modules. Drop a file here that subclasses a reference protocol and it is
discovered by ``flushcheck certify <module>`` and fuzzed by ``pytest``; nothing else
to edit."""
