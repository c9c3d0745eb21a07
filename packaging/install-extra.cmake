# install-extra.cmake: the parts of `cmake --install` that install() cannot
# express: the sendmail/mailq/newaliases symlinks to tern, and the systemd
# units (tern.service; tern-dmarc-report.timer and .service) with the
# binary's path under the install prefix (the units in the source name
# /usr/sbin/tern, what the Debian package installs).
# Runs at install time: CMAKE_INSTALL_PREFIX is the prefix given then, and
# DESTDIR (from the environment) is put in front of every path.
# TERN_SOURCE_DIR is set by CMakeLists.txt.

set(tern_root "$ENV{DESTDIR}${CMAKE_INSTALL_PREFIX}")

function(tern_install_link name target)
  set(path "${tern_root}/${name}")
  get_filename_component(dir "${path}" DIRECTORY)
  file(MAKE_DIRECTORY "${dir}")
  message(STATUS "Installing: ${path} -> ${target}")
  file(CREATE_LINK "${target}" "${path}" RESULT err SYMBOLIC)
  if(err)
    message(FATAL_ERROR "cannot create the link ${path}: ${err}")
  endif()
  list(APPEND CMAKE_INSTALL_MANIFEST_FILES "${path}")
  set(CMAKE_INSTALL_MANIFEST_FILES "${CMAKE_INSTALL_MANIFEST_FILES}" PARENT_SCOPE)
endfunction()

# tern dispatches on the name it is called by (src/cmd/main.c).
tern_install_link(sbin/sendmail tern)
tern_install_link(bin/mailq ../sbin/tern)
tern_install_link(bin/newaliases ../sbin/tern)

# The units: tern.service, and the daily DMARC report (timer and service).
file(MAKE_DIRECTORY "${tern_root}/lib/systemd/system")
foreach(unit_name tern.service tern-dmarc-report.service tern-dmarc-report.timer)
  file(READ "${TERN_SOURCE_DIR}/packaging/${unit_name}" unit)
  string(REPLACE "/usr/sbin/tern" "${CMAKE_INSTALL_PREFIX}/sbin/tern" unit "${unit}")
  set(unit_path "${tern_root}/lib/systemd/system/${unit_name}")
  message(STATUS "Installing: ${unit_path}")
  file(WRITE "${unit_path}" "${unit}")
  file(CHMOD "${unit_path}" PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
  list(APPEND CMAKE_INSTALL_MANIFEST_FILES "${unit_path}")
endforeach()
