# EXAMPLE ONLY - NOT TESTED by rblwatch's test suite (no Exchange here).
# Turns on recipient validation on an Exchange Edge Transport server so mail for unknown recipients is refused
# during the SMTP dialogue instead of being accepted and bounced (backscatter). Run with "enable" or "disable".
# Call it from an rblwatch hook through a remoting wrapper, e.g.:
#   command = ["pwsh", "-File", "hooks/examples/exchange-recipient-validation.ps1", "enable"]
param([Parameter(Mandatory = $true)][ValidateSet("enable", "disable")][string]$Action)
$state = Join-Path $env:ProgramData "rblwatch\recipient-validation.saved"
if ($Action -eq "enable") {
    if (-not (Test-Path $state)) {
        New-Item -ItemType Directory -Force -Path (Split-Path $state) | Out-Null
        (Get-RecipientFilterConfig).RecipientValidationEnabled | Out-File $state
    }
    Set-RecipientFilterConfig -RecipientValidationEnabled $true
    Write-Output "recipient validation enabled"
} else {
    if (Test-Path $state) {
        $previous = [System.Convert]::ToBoolean((Get-Content $state).Trim())
        Set-RecipientFilterConfig -RecipientValidationEnabled $previous
        Remove-Item $state
        Write-Output "recipient validation restored to $previous"
    } else {
        Write-Output "nothing to restore"
    }
}
# Emergency brake (stops NDRs to all remote domains): Set-RemoteDomain Default -NDREnabled $false
