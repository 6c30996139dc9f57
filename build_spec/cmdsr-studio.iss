; Inno Setup script for the Windows installer of CMDSR Studio (Inno Setup 6.2+).
;
; First build the bundle on Windows:   py -3.11 build_spec\build.py
; then compile this script:            iscc build_spec\cmdsr-studio.iss
; or with another version:             iscc /DAppVersion=0.2.0 build_spec\cmdsr-studio.iss
; The installer lands in dist\CMDSR-Studio-<version>-setup.exe. See docs\packaging.md.

#ifndef AppVersion
  #define AppVersion "0.1.0"
#endif
#define AppName "CMDSR Studio"
#define AppExe "CMDSR Studio.exe"
#define BundleDir "..\dist\cmdsr-studio"
#define IconFile "..\resources\icons\cmdsr_studio.ico"

[Setup]
; A fixed AppId lets a newer installer upgrade an older installation in place.
AppId={{A219D3FB-F444-452A-97AF-9774C11C4F40}
AppName={#AppName}
AppVersion={#AppVersion}
AppVerName={#AppName} {#AppVersion}
AppPublisher=CMDSR Studio developers
DefaultDirName={autopf}\{#AppName}
DefaultGroupName={#AppName}
DisableProgramGroupPage=yes
; Per-user install without admin rights is offered too.
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
OutputDir=..\dist
OutputBaseFilename=CMDSR-Studio-{#AppVersion}-setup
; lzma2 over ~850 MB of libraries: slow to compile, but the smallest download.
Compression=lzma2/max
SolidCompression=yes
LZMANumBlockThreads=4
WizardStyle=modern
UninstallDisplayIcon={app}\{#AppExe}
UninstallDisplayName={#AppName}
#if FileExists(AddBackslash(SourcePath) + IconFile)
SetupIconFile={#IconFile}
#endif

[Languages]
Name: "english"; MessagesFile: "compiler:Default.isl"

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked

[Files]
Source: "{#BundleDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{autoprograms}\{#AppName}"; Filename: "{app}\{#AppExe}"
Name: "{autodesktop}\{#AppName}"; Filename: "{app}\{#AppExe}"; Tasks: desktopicon

[Run]
Filename: "{app}\{#AppExe}"; Description: "{cm:LaunchProgram,{#AppName}}"; Flags: nowait postinstall skipifsilent

[UninstallDelete]
; Python byte-code caches the app may have written beside itself.
Type: filesandordirs; Name: "{app}\_internal\__pycache__"
