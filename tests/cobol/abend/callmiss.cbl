      *> CALLMISS - a called program that hits a libcob runtime error:
      *> it CALLs a program that exists nowhere, without ON EXCEPTION.
       IDENTIFICATION DIVISION.
       PROGRAM-ID. CALLMISS.
       DATA DIVISION.
       WORKING-STORAGE SECTION.
       01  WS-TARGET               PIC X(8) VALUE "NOSUCHPG".
       LINKAGE SECTION.
       01  LK-TEXT                 PIC X(8).
       PROCEDURE DIVISION USING LK-TEXT.
           MOVE "CALLING" TO LK-TEXT
           CALL WS-TARGET
           END-CALL
           MOVE "RETURNED" TO LK-TEXT
           GOBACK.
