"""sdk.devices: deploy, profile and validate on phones (ADB), boards (SSH) and the local host.

Installed as `sdk.devices`; the source folder is `devices/` at the top of the repository.
"""
