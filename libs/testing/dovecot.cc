#include "testing/dovecot.h"

#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <stdexcept>

namespace leadflow::testing {

namespace fs = std::filesystem;

Dovecot::Dovecot() {
  dir_ = BuildDir() + "/test-logs/" + UniqueName("dovecot");
  fs::create_directories(dir_ + "/run");
  fs::create_directories(dir_ + "/state");
  port_ = FreePort();
  uid_t uid = getuid();
  gid_t gid = getgid();
  std::string internal_user = getpwuid(uid)->pw_name;
  std::string login_user = internal_user;
  if (uid == 0) {
    passwd* dovecot = getpwnam("dovecot");
    if (dovecot == nullptr) throw std::runtime_error("no dovecot user: install dovecot-imapd");
    uid = dovecot->pw_uid;
    gid = dovecot->pw_gid;
    internal_user = "dovecot";
    login_user = "dovenull";
  }
  mail_uid_ = uid;
  mail_gid_ = gid;
  std::ofstream(dir_ + "/passwd") << "leads:{PLAIN}secret\n";
  std::ofstream config(dir_ + "/dovecot.conf");
  config << "base_dir = " << dir_ << "/run\nstate_dir = " << dir_ << "/state\n"
         << "log_path = " << dir_ << "/dovecot.log\nprotocols = imap\nlisten = 127.0.0.1\n"
         << "ssl = no\ndisable_plaintext_auth = no\nauth_mechanisms = plain login\n"
         << "mail_location = maildir:" << dir_ << "/mail/%u\n"
         << "default_internal_user = " << internal_user << "\n"
         << "default_internal_group = " << getgrgid(getgid())->gr_name << "\n"
         << "default_login_user = " << login_user << "\nfirst_valid_uid = 1\n"
         << "passdb {\n  driver = passwd-file\n  args = scheme=PLAIN username_format=%u " << dir_
         << "/passwd\n}\nuserdb {\n  driver = static\n  args = uid=" << uid << " gid=" << gid
         << " home=" << dir_ << "/home/%u\n}\n"
         << "service imap-login {\n  inet_listener imap {\n    address = 127.0.0.1\n    port = "
         << port_ << "\n  }\n  inet_listener imaps {\n    port = 0\n  }\n  chroot =\n}\n"
         << "service anvil {\n  chroot =\n}\n"
         << "service stats {\n  unix_listener stats-reader {\n    mode = 0666\n  }\n"
         << "  unix_listener stats-writer {\n    mode = 0666\n  }\n}\n";
  config.close();
  MakeFolder();
  fs::create_directories(dir_ + "/home/leads");
  Own(dir_ + "/home");
  process_ = std::make_unique<Process>(
      std::vector<std::string>{"/usr/sbin/dovecot", "-F", "-c", dir_ + "/dovecot.conf"},
      std::map<std::string, std::string>{}, "dovecot");
  if (!WaitFor([&] { return Imap("", "CAPABILITY").find("IMAP4rev1") != std::string::npos; },
               std::chrono::seconds(20))) {
    throw std::runtime_error("dovecot did not start: " + process_->Log());
  }
}

Dovecot::~Dovecot() {
  process_->Signal(SIGTERM);
  process_->Wait(std::chrono::seconds(10));
}

std::string Dovecot::url() const { return "imap://127.0.0.1:" + std::to_string(port_); }

void Dovecot::Deliver(const std::string& name, const std::string& message) {
  std::string path = dir_ + "/mail/leads/new/" + name;
  std::ofstream(path, std::ios::binary) << message;
  Own(path);
}

void Dovecot::Deliver(const std::string& name, const std::string& message,
                      std::filesystem::file_time_type received) {
  Deliver(name, message);
  std::filesystem::last_write_time(dir_ + "/mail/leads/new/" + name, received);
}

void Dovecot::RecreateFolder(const std::vector<std::pair<std::string, std::string>>& messages) {
  fs::remove_all(dir_ + "/mail/leads");
  MakeFolder();
  for (const auto& [name, content] : messages) Deliver(name, content);
}

std::string Dovecot::Imap(const std::string& folder, const std::string& command) const {
  return Shell("curl -s --max-time 10 -u leads:secret " + ShellQuote(url() + "/" + folder) +
               " -X " + ShellQuote(command));
}

std::string Dovecot::Search(const std::string& criterion) const {
  std::string out = Imap("INBOX", "UID SEARCH " + criterion);
  size_t at = out.find("* SEARCH");
  return at == std::string::npos ? "?" : out.substr(at, out.find('\r', at) - at);
}

void Dovecot::MakeFolder() {
  for (const char* sub : {"new", "cur", "tmp"}) fs::create_directories(dir_ + "/mail/leads/" + sub);
  Own(dir_ + "/mail");
}

void Dovecot::Own(const std::string& path) {
  if (getuid() != 0) return;
  (void)chown(path.c_str(), mail_uid_, mail_gid_);
  if (!fs::is_directory(path)) return;
  for (auto it = fs::recursive_directory_iterator(path); it != fs::recursive_directory_iterator();
       ++it) {
    (void)chown(it->path().c_str(), mail_uid_, mail_gid_);
  }
  (void)chown(path.c_str(), mail_uid_, mail_gid_);
}

}  // namespace leadflow::testing
