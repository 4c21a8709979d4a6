# Install the Defender ChatOps agent on a Windows host as a scheduled task that runs as SYSTEM at boot.
# Run in an elevated PowerShell. Needs Python 3.11+ on PATH. Usage:
#   .\install-agent.ps1 -Server wss://bot.example:8765/agent -HostId host42
# It asks for the enrollment token (typed input is hidden and stays out of the shell's history); for
# unattended installs set $env:DEFENDER_ENROLL_TOKEN first. The token reaches the agent through that
# variable, never on a command line, where every local user could read it.
param(
    [Parameter(Mandatory)] [string] $Server,
    [Parameter(Mandatory)] [string] $HostId,
    [string] $Wheel = "defender_chatops-0.1.0-py3-none-any.whl",
    [string] $Root = "$env:ProgramData\DefenderChatOps"
)
$ErrorActionPreference = "Stop"
New-Item -ItemType Directory -Force -Path $Root | Out-Null
# The state directory holds the agent's private key: SYSTEM and Administrators only (by SID: the names
# are translated on non-English Windows). The agent sets the same ACL on its state directory each start.
& "$env:SystemRoot\System32\icacls.exe" $Root /inheritance:r /grant:r "*S-1-5-18:(OI)(CI)F" "*S-1-5-32-544:(OI)(CI)F" | Out-Null
if ($LASTEXITCODE -ne 0) { throw "icacls could not restrict $Root" }
python -m venv "$Root\venv"
& "$Root\venv\Scripts\pip.exe" install --quiet $Wheel
$agent = "$Root\venv\Scripts\defender-agent.exe"
# First start enrolls (the token is single-use and expires); later starts use the pinned keys.
if (-not $env:DEFENDER_ENROLL_TOKEN) {
    $secure = Read-Host -AsSecureString "Enrollment token for $HostId (from defender-bot enroll $HostId)"
    $env:DEFENDER_ENROLL_TOKEN = [System.Net.NetworkCredential]::new("", $secure).Password
}
try {
    & $agent --server $Server --id $HostId --state-dir "$Root\state" --enroll-only
    if ($LASTEXITCODE -ne 0) { throw "enrollment failed (exit code $LASTEXITCODE); see the message above" }
} finally {
    Remove-Item Env:\DEFENDER_ENROLL_TOKEN -ErrorAction SilentlyContinue
}
$action = New-ScheduledTaskAction -Execute $agent -Argument "--server $Server --id $HostId --state-dir `"$Root\state`""
$trigger = New-ScheduledTaskTrigger -AtStartup
$settings = New-ScheduledTaskSettingsSet -RestartCount 999 -RestartInterval (New-TimeSpan -Minutes 1) -ExecutionTimeLimit 0
Register-ScheduledTask -TaskName "DefenderChatOpsAgent" -Action $action -Trigger $trigger -Settings $settings `
    -User "SYSTEM" -RunLevel Highest -Force | Out-Null
Start-ScheduledTask -TaskName "DefenderChatOpsAgent"
Write-Host "Agent for $HostId installed and started."
